import Foundation

// The pure half of reading a request: text in, values out, no Hummingbird or NIO. ConsoleRequest.swift,
// ConsoleGuard.swift and ConsoleAPI.swift call these with what they take from the request; fuzz/ConsoleFuzzer.swift
// compiles this file on its own.

/// Reading requests: bodies within the limit, forms, cookies, the domain name of the path.
enum ConsoleRequest {
    /// The fields of an `application/x-www-form-urlencoded` body. `+` is a space; a field whose percent-encoding
    /// cannot be decoded is the empty string; a later field of the same name wins.
    static func parseForm(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            out[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return out
    }

    struct EncodingProblem: Error {
        var message: String
    }

    /// The domain name of the path parameter `raw` (`/vms/{name}`), percent-decoded, or the message of the 400
    /// that refuses it.
    static func domainName(raw: String?) -> Result<String, EncodingProblem> {
        guard let raw, !raw.isEmpty else {
            return .failure(EncodingProblem(message: "no domain name in the path; give it as /vms/NAME"))
        }
        switch percentDecode(raw) {
        case .success(let name):
            if name.isEmpty { return .failure(EncodingProblem(message: "the domain name in the path is empty; give it as /vms/NAME")) }
            return .success(name)
        case .failure(let problem):
            return .failure(EncodingProblem(
                message: "the domain name '\(raw)' in the path is not valid percent-encoding: \(problem.message); "
                    + "encode each byte of the UTF-8 name that is not a letter, digit, '-', '.', '_' or '~' as %XX"))
        }
    }

    /// `text` with every `%XX` replaced by the byte XX; the bytes must form UTF-8 text without NUL. `+` stays `+`
    /// (it means a space only in forms).
    static func percentDecode(_ text: some StringProtocol) -> Result<String, EncodingProblem> {
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let input = Array(text.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            let b = input[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < input.count, let high = hex(input[i + 1]), let low = hex(input[i + 2]) else {
                    let found = String(decoding: input[i..<min(i + 3, input.count)], as: UTF8.self)
                    return .failure(EncodingProblem(message: "'\(found)' at byte \(i) is not '%' followed by two hex digits"))
                }
                bytes.append(high << 4 | low)
                i += 3
            } else {
                bytes.append(b)
                i += 1
            }
        }
        if bytes.contains(0) { return .failure(EncodingProblem(message: "it contains NUL (%00)")) }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            return .failure(EncodingProblem(message: "the decoded bytes are not UTF-8"))
        }
        return .success(decoded)
    }

    /// The value of cookie `name` in the `Cookie` header values `headers` (the first one that has it).
    static func cookie(_ headers: some Sequence<String>, _ name: String) -> Substring? {
        for header in headers {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name { return kv[1] }
            }
        }
        return nil
    }

    /// The `timeout` query parameter of a shutdown: seconds from 0 to 3600, else nil (a 400).
    static func shutdownSeconds(_ text: String) -> Int? {
        guard let s = Int(text), (0...3600).contains(s) else { return nil }
        return s
    }
}

/// The guard's checks of the request's headers (ConsoleGuard), on their text.
enum ConsoleHeaders {
    /// The token of `Authorization: Bearer TOKEN`.
    static func bearerToken(authorization value: String?) -> Substring? {
        guard let value else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].drop { $0 == " " }
    }

    /// Whether the `Host` value `authority` names a loopback host, as a loopback console requires.
    static func isLoopbackAuthority(_ authority: String?) -> Bool {
        guard let host = authority.flatMap(hostName) else { return false }
        return ListenAddress.isLoopbackName(host)
    }

    /// Whether the `Cookie` header values carry the session cookie with this process's session secret.
    static func hasSession(cookies: some Sequence<String>, secret: String) -> Bool {
        guard let cookie = ConsoleRequest.cookie(cookies, sessionCookie) else { return false }
        return ConsoleToken.matches(cookie, secret)
    }

    /// The session cookie's name.
    static let sessionCookie = "svirt_session"

    /// Why a form POST's origin is not this console, or nil when it is. `authority` is the request's `Host`; a
    /// browser sends `Origin` with every POST; `Referer` stands in where an older one did not.
    static func originProblem(authority: String?, origin: String?, referer: String?) -> String? {
        let own = authority.map { "http://\($0)" }
        if let origin {
            if let own, origin == own { return nil }
            return "cross-origin request refused: Origin '\(origin)' is not this console (\(own ?? "no Host"))"
        }
        if let referer {
            if let own, referer == own || referer.hasPrefix(own + "/") { return nil }
            return "cross-origin request refused: Referer '\(referer)' is not this console (\(own ?? "no Host"))"
        }
        return "a form must come from this console's own pages: the request has neither Origin nor Referer"
    }

    /// The host part of a `Host` value (`127.0.0.1:8080`, `[::1]:8080`, `localhost`).
    static func hostName(_ authority: String) -> String? {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])
    }

    /// The `Content-Length` a request declares, when it is a number.
    static func declaredLength(_ value: String?) -> Int? { value.flatMap { Int($0) } }
}
