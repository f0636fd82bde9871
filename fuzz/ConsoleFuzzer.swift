// libFuzzer target for the web console's request parsing: form bodies, the domain name of the path, cookies, the
// bearer token, the Host, Origin and Referer checks, Content-Length, the shutdown timeout, and the redaction of
// domain XML. The input is fields separated by NUL bytes:
// text (form body, path parameter), Cookie, Authorization, Host, Origin, Referer, a number, domain XML. Built by scripts/fuzz-all with the console's pure files
// (ConsoleRequestParsing.swift, ListenAddress.swift, ConsoleToken.swift, HTML.swift, DomainXMLSecrets.swift);
// never part of `swift build`. Every input must give a value, never a trap.
import Foundation
import SVirt

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

let token = String(repeating: "ab", count: 32)

@_cdecl("LLVMFuzzerTestOneInput")
public func consoleFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let fields = bytes.split(separator: 0, maxSplits: 7, omittingEmptySubsequences: false)
        .map { String(decoding: $0, as: UTF8.self) }
    func field(_ k: Int) -> String? { k < fields.count ? fields[k] : nil }
    let text = fields[0]

    // A form body.
    let form = ConsoleRequest.parseForm(text)
    _ = form["csrf"].map { ConsoleToken.matches($0, token) }

    // The path parameter: whatever decodes is non-empty, and a name encoded as the pages encode it decodes to itself.
    switch ConsoleRequest.domainName(raw: text) {
    case .success(let name):
        check(!name.isEmpty && !name.contains("\0"), "a decoded name that is empty or holds NUL")
    case .failure(let p):
        check(!p.message.isEmpty, "an empty problem")
    }
    if !text.contains("\0") {
        let encoded = HTML.pathSegment(text)
        guard case .success(let back) = ConsoleRequest.percentDecode(encoded) else {
            fatalError("invariant: pathSegment(\(text.debugDescription)) = \(encoded) does not decode")
        }
        check(back == text, "pathSegment(\(text.debugDescription)) decodes to \(back.debugDescription)")
    }

    // Headers.
    let cookies = [field(1), field(0)].compactMap { $0 }
    _ = ConsoleRequest.cookie(cookies, ConsoleHeaders.sessionCookie)
    _ = ConsoleHeaders.hasSession(cookies: cookies, secret: token)
    check(!ConsoleHeaders.hasSession(cookies: cookies, secret: token) || cookies.joined().contains(token),
          "a session without the secret")
    if let t = ConsoleHeaders.bearerToken(authorization: field(2)) {
        check(!t.hasPrefix(" "), "a bearer token with a leading space")
        _ = ConsoleToken.matches(t, token)
    }
    let authority = field(3)
    if let a = authority {
        let host = ConsoleHeaders.hostName(a)
        if let host, ConsoleHeaders.isLoopbackAuthority(a) { check(ListenAddress.isLoopbackName(host), "loopback disagrees") }
        _ = try? ListenAddress(parsing: a)
    }
    let problem = ConsoleHeaders.originProblem(authority: authority, origin: field(4), referer: field(5))
    if problem == nil { check(authority != nil, "an origin accepted without a Host") }
    _ = ConsoleHeaders.declaredLength(field(6))
    if let s = field(6).flatMap(ConsoleRequest.shutdownSeconds) { check((0...3600).contains(s), "timeout \(s)") }

    // Domain XML shown without its secrets: what is shown reads and holds no passwd.
    if let xml = field(7), let shown = DomainXMLSecrets.redacted(xml), !shown.isEmpty {
        guard let tree = try? XMLTree(parsing: shown, what: "redacted") else {
            fatalError("invariant: redacted XML does not read back\n\(shown)")
        }
        func clean(_ e: XMLTree.Element) -> Bool { e[attribute: "passwd"] == nil && e.elements.allSatisfy(clean) }
        check(clean(tree.root), "a passwd attribute survived the redaction")
    }
    return 0
}
