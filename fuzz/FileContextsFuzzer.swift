// libFuzzer target for file_contexts and its companions: the input is up to four files separated by NUL bytes
// (file_contexts, .homedirs, .subs_dist, .subs), read strictly and then skipping bad lines, then asked for the
// labels of a few paths. Built by scripts/fuzz-all; never part of `swift build`. Every input must give a thrown
// error or a value, never a trap.
import SELinux

let paths = ["/", "/etc/shadow", "/var/lib/libvirt/images/vm.qcow2", "/home/user/.ssh/authorized_keys",
             "/usr/bin/qemu-system-x86_64", "/dev/kvm", "/run/libvirt/qemu/vm.monitor", "/tmp/a b/c",
             "/var/lib/svirt/x", "/srv/www/html/index.html", "/dev/pts/3", "/usr/lib64/libc.so.6", "//a///b/"]
let types: [FileType?] = [nil, .regular, .characterDevice]

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fileContextsFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let parts = bytes.split(separator: 0, maxSplits: 3, omittingEmptySubsequences: false).map(Array.init)
    func source(_ k: Int, _ name: String) -> FileContextsSource? {
        k < parts.count ? FileContextsSource(path: name, bytes: parts[k]) : nil
    }
    let main = source(0, "file_contexts")!
    let homedirs = source(1, "file_contexts.homedirs"), dist = source(2, "file_contexts.subs_dist")
    let local = source(3, "file_contexts.subs")
    var loaded: [FileContexts] = []
    for ignore in [false, true] {
        if let fc = try? FileContexts(main: main, homedirs: homedirs, distributionAliases: dist, localAliases: local,
                                      ignoreErrors: ignore) {
            loaded.append(fc)
        }
    }
    // A strict read that succeeds skips nothing, and the lenient read then gives the same lines.
    if loaded.count == 2 {
        check(loaded[0].skipped.isEmpty, "a strict read skipped lines")
        check(loaded[0].count == loaded[1].count, "strict and lenient reads of good files differ")
    }
    // The lenient read (the same lines as the strict one when that succeeded) answers lookups, through the shared
    // matcher and a fresh one alike.
    guard let fc = loaded.last else { return 0 }
    let matcher = fc.makeMatcher()
    for p in paths {
        for t in types {
            let a = fc.lookup(p, fileType: t)
            if t == nil { check(a == matcher.lookup(p, fileType: t), "lookup of \(p) differs between the shared and a fresh matcher") }
        }
        _ = fc.aliases.rewrite(p)
    }
    for s in fc.specifications.prefix(16) { _ = fc.lookup(s.regex); _ = s.context; _ = s.description }
    return 0
}
