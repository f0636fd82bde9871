import Foundation
import Glibc
import SVirtLinux
import SVirtTestSupport
import Testing

/// Where test artefacts go: `<repository>/.build/test-artifacts`.
func artifactDirectory() throws -> String {
    let dir = "\(repositoryRoot)/.build/test-artifacts"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

let hasQEMU: Bool = FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64")

@Suite("svirt serve in a real browser", .serialized, .enabled(if: getuid() == 0, "needs root"),
       .enabled(if: HeadlessChromium.executable != nil, "chromium is not installed (CI installs it)"))
struct ConsoleBrowserTests {
    @Test("headless chromium signs in, loads the console, starts a VM with a click, sees its process and image labels, opens the isolation matrix and stops the VM; svirt list agrees each time",
          arguments: hasQEMU ? [false, true] : [true])
    func browser(standIn: Bool) async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-browser")
        let original = "system_u:object_r:virt_image_t:s0"
        let disk = try dir.image("web.img", label: original)
        let otherDisk = try dir.image("other.img", label: original)
        try dir.define("webvm", disk: disk)
        try dir.define("othervm", disk: otherDisk)
        let console = try ConsoleProcess(state: dir.state, extra: standIn ? ["--stand-in"] : [])
        defer { console.stop() }
        let browser = try HeadlessChromium(scratch: dir.path)
        defer { browser.shutdown() }
        try browser.openPage()

        // Changes need a session: sign in with the token, as a user does.
        try browser.navigate(console.base + "/login")
        try browser.wait(for: "document.querySelector('input[name=\"token\"]')", timeout: 30, "the sign-in form")
        _ = try browser.evaluate("document.querySelector('input[name=\"token\"]').value = \(HeadlessChromium.jsString(console.token))")
        try browser.click("form[action=\"/login\"] button[type=\"submit\"]")
        try browser.wait(for: "location.pathname === '/' && document.querySelector('button.start[data-vm=\"webvm\"]')",
                         timeout: 30, "the VM list after signing in")
        try browser.wait(for: "document.querySelector('button.start[data-vm=\"webvm\"]')", timeout: 30, "the VM list with a Start button")

        // Start it with a click on the form's button.
        try browser.click("button.start[data-vm=\"webvm\"]")
        try browser.wait(for: "location.search.includes('done=start') && document.querySelector('button.destroy[data-vm=\"webvm\"]')",
                         timeout: 90, "the VM list after the start")
        let row = "document.querySelector('button.destroy[data-vm=\"webvm\"]').closest('tr')"
        let shownProcess = try browser.evaluate("\(row).querySelector('.process-label').textContent.trim()") as? String
        let shownImage = try browser.evaluate("\(row).querySelector('.image-label').textContent.trim()") as? String
        let shownState = try browser.evaluate("\(row).cells[2].textContent.trim()") as? String
        #expect(shownState == "running")
        let listed = try #require(try dir.list()["webvm"], "svirt list shows the VM the browser started")
        #expect(listed["state"] as? String == "running")
        #expect(listed["pid"] as? Int != nil)
        let level = try #require(listed["level"] as? String)
        #expect(shownProcess == listed["label"] as? String)
        #expect(shownImage == listed["imageLabel"] as? String)
        #expect(shownProcess?.hasSuffix(":svirt_t:\(level)") == true || shownProcess?.contains("_t:\(level)") == true, "\(shownProcess ?? "-")")
        #expect(shownImage == "system_u:object_r:svirt_image_t:\(level)")
        let onDisk = try ExtendedAttributes.get("security.selinux", path: disk).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(onDisk == shownImage, "the image carries the label the page shows")

        // The screenshot of the VM list is kept.
        let png = try browser.screenshot()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000)
        let artefact = "\(try artifactDirectory())/console-vm-list\(standIn ? "-stand-in" : "").png"
        try png.write(to: URL(fileURLWithPath: artefact))
        print("screenshot of the VM list: \(artefact)")

        // The isolation matrix, through the header link.
        try browser.click("header a[href=\"/matrix\"]")
        try browser.wait(for: "location.pathname === '/matrix' && document.querySelector('table.svirt-check')", timeout: 60, "the isolation matrix")
        let own = try browser.evaluate("""
            [...document.querySelectorAll('table.svirt-check td[data-vm="webvm"]')].filter(c => c.dataset.state === 'own').map(c => c.title).join('\\n')
            """) as? String ?? ""
        #expect(own.contains("read"), "the VM's own disk is reachable, with the permissions on hover: \(own)")
        let denied = try browser.evaluate("""
            [...document.querySelectorAll('table.svirt-check td[data-vm="webvm"]')].filter(c => c.dataset.state === 'denied' && c.dataset.target.indexOf('process:') !== 0).map(c => c.title).join('\\n')
            """) as? String ?? ""
        #expect(!denied.isEmpty, "othervm's disk is denied to webvm")
        #expect(denied.contains("constrain") || denied.contains("denied"), "the hover text gives the policy's reason: \(denied)")

        // Back to the list, and stop the VM with a click.
        try browser.click("header a[href=\"/\"]")
        try browser.wait(for: "location.pathname === '/' && document.querySelector('button.destroy[data-vm=\"webvm\"]')", timeout: 30, "the VM list")
        try browser.click("button.destroy[data-vm=\"webvm\"]")
        try browser.wait(for: "location.search.includes('done=destroy') && document.querySelector('button.start[data-vm=\"webvm\"]')",
                         timeout: 60, "the VM list after the stop")
        #expect(try browser.evaluate("document.getElementById('notice').textContent") as? String == "Domain ‘webvm’ destroyed.")
        #expect(try dir.list()["webvm"]?["state"] as? String == "shut off", "svirt list shows the VM stopped")
        let restored = try ExtendedAttributes.get("security.selinux", path: disk).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(restored == original, "the image's label is given back")

        // The reverse: a VM started by the CLI shows up in the console.
        let started = try runSVirt(["start", "webvm", "--state-dir", dir.state] + (standIn ? ["--stand-in"] : []))
        try #require(started.status == 0, "svirt start: \(started.stderr)")
        try browser.navigate(console.base + "/")
        try browser.wait(for: "document.querySelector('button.destroy[data-vm=\"webvm\"]')", timeout: 30, "the CLI's VM in the console")
        #expect(try browser.evaluate("\(row).querySelector('.process-label').textContent.trim()") as? String == dir.list()["webvm"]?["label"] as? String)
        #expect(try runSVirt(["destroy", "webvm", "--state-dir", dir.state]).status == 0)
    }
}
