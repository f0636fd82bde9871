import Foundation
import Testing
@testable import SVirtConsole

@Suite("LoopbackPeer: socket table entries")
struct LoopbackPeerTests {
    @Test("addresses of /proc/net/tcp and tcp6 are read as the kernel prints them (host-order words)")
    func endpoints() {
        #expect(LoopbackPeer.endpoint("0100007F:983F")?.port == 0x983F)
        #expect(LoopbackPeer.endpoint("0100007F:983F")?.loopback == true)        // 127.0.0.1
        #expect(LoopbackPeer.endpoint("0200007F:0050")?.loopback == true)        // 127.0.0.2
        #expect(LoopbackPeer.endpoint("0101A8C0:0050")?.loopback == false)       // 192.168.1.1
        #expect(LoopbackPeer.endpoint("00000000000000000000000001000000:1F90")?.loopback == true)   // ::1
        #expect(LoopbackPeer.endpoint("0000000000000000FFFF00000100007F:1F90")?.loopback == true)   // ::ffff:127.0.0.1
        #expect(LoopbackPeer.endpoint("0000000000000000FFFF00000101A8C0:1F90")?.loopback == false)  // ::ffff:192.168.1.1
        #expect(LoopbackPeer.endpoint("00000000000000000000000000000000:1F90")?.loopback == false)  // ::
        #expect(LoopbackPeer.endpoint("0100007F") == nil)
        #expect(LoopbackPeer.endpoint("XYZ:0050") == nil)
        #expect(LoopbackPeer.endpoint("0100007F0:0050") == nil)
    }

    @Test("the uid comes from the established entry whose ports are the connection's, swapped")
    func table() throws {
        let dir = try Scratch("svirt-loopback-peer")
        try FileManager.default.createDirectory(atPath: "\(dir.path)/net", withIntermediateDirectories: true)
        let tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
               1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 0 0 10 -1
               2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 0 0 10 -1
               3: 0100007F:9C41 0100007F:1F90 05 00000000:00000000 00:00000000 00000000     0        0 0 3 0
            """
        try tcp.write(toFile: "\(dir.path)/net/tcp", atomically: true, encoding: .utf8)
        #expect(LoopbackPeer.uid(clientPort: 0x9C40, serverPort: 0x1F90, procNet: "\(dir.path)/net") == 1000)
        // A closed client socket (FIN_WAIT2, shown as root) is not an answer.
        #expect(LoopbackPeer.uid(clientPort: 0x9C41, serverPort: 0x1F90, procNet: "\(dir.path)/net") == nil)
        #expect(LoopbackPeer.uid(clientPort: 0x9C42, serverPort: 0x1F90, procNet: "\(dir.path)/net") == nil)
    }
}
