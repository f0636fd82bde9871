/// The SELinux Notebook's example VMs ("SELinux Virtual Machine Support"), as libvirt domain XML.
enum NotebookExamples {
    /// A chapter VM: its name, its image, and the `<seclabel>` it is defined with.
    struct VM {
        var name: String
        var image: String
        var shareable = false
        var seclabel = ""

        func xml(imageDirectory: String = "/var/lib/libvirt/images") -> String {
            """
            <domain type='kvm'>
              <name>\(name)</name>
              <memory unit='MiB'>256</memory>
              <vcpu>1</vcpu>
              <os><type arch='x86_64' machine='pc'>hvm</type></os>
              <devices>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='raw'/>
                  <source file='\(imageDirectory)/\(image)'/>
                  <target dev='hda' bus='ide'/>\(shareable ? "\n          <shareable/>" : "")
                </disk>
              </devices>\(seclabel.isEmpty ? "" : "\n  " + seclabel)
            </domain>
            """
        }
    }

    static let dynamic = [VM(name: "Dynamic_VM1", image: "Dynamic_VM1.img"), VM(name: "Dynamic_VM2", image: "Dynamic_VM2.img")]
    static let shareable = [VM(name: "Shareable_VM", image: "Shareable_VM.img", shareable: true),
                            VM(name: "Shareable_VM-clone", image: "Shareable_VM.img", shareable: true)]
    static let staticVMs = [
        VM(name: "Static_VM1", image: "Static_VM1.img",
           seclabel: "<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1022,c1023</label></seclabel>"),
        VM(name: "Static_VM2", image: "Static_VM2.img",
           seclabel: "<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:unconfined_t:s0:c11,c22</label></seclabel>"),
    ]
}
