import Foundation
import SVirt
import Testing
@testable import SVirtLinux

@Suite("the labelling lock and the managing context") struct LabelingLockTests {
    @Test("a second svirt process waits for the labelling lock, then gives up saying why (libvirt's metadata lock)")
    func contention() throws {
        let dir = try ScratchDirectory()
        let path = "\(dir.path)/labels.lock"
        var held: LabelingLock? = try LabelingLock(path: path)
        // flock locks belong to the open file description, so a second open in this process contends like another process.
        #expect { try LabelingLock(path: path, timeout: 0.2) } throws: { e in
            (e as? SVirtError)?.message.contains("another svirt process has been changing labels for 0.2 s") == true
        }
        #expect(held != nil)
        held = nil
        _ = try LabelingLock(path: path, timeout: 0.2)
    }

    @Test("a managing context in svirt.conf with a bad category is refused, naming the file and line (libvirt's 'Cannot parse category')")
    func badManagerContext() throws {
        let dir = try ScratchDirectory()
        _ = try dir.file("svirt.conf", "# test\nmanager_context = system_u:system_r:virtd_t:s0-s0:cX.c1023\n")
        #expect { try HostEnvironment(stateDirectory: dir.path, selinuxRoot: nil) } throws: { e in
            let m = (e as? SVirtError)?.message ?? ""
            return m.hasPrefix("\(dir.path)/svirt.conf:2: ")
        }
    }
}
