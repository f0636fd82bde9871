import Foundation
import Hummingbird
import NIOCore

/// Reading requests: bodies within the limit, forms, cookies.
enum ConsoleRequest {
    /// The body, at most `limit` bytes (more: 413).
    static func body(_ request: Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ConsoleFailure(.contentTooLarge, "the request body is larger than \(limit) bytes, the most the console reads")
        }
    }

    /// An `application/x-www-form-urlencoded` body, checked for this process's CSRF token.
    static func form(_ request: Request, server: ConsoleServer) async throws -> [String: String] {
        let buffer = try await body(request, limit: server.bodyLimit)
        let fields = parseForm(String(buffer: buffer))
        guard let csrf = fields["csrf"], ConsoleToken.matches(csrf, server.csrfToken) else {
            throw ConsoleFailure(.forbidden, "the form's CSRF token is missing or stale; reload the page and submit it again")
        }
        return fields
    }

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

    /// The domain name in the path (`/vms/{name}`), percent-decoded: a client encodes each byte of the UTF-8 name
    /// that is not an unreserved character as `%XX` (the router hands the parameter over as it came). An encoding
    /// that is not `%` and two hex digits, bytes that are not UTF-8, and NUL are a 400.
    static func domainName(_ context: ConsoleContext) throws -> String {
        guard let raw = context.parameters.get("name"), !raw.isEmpty else {
            throw ConsoleFailure(.badRequest, "no domain name in the path; give it as /vms/NAME")
        }
        switch percentDecode(raw) {
        case .success(let name):
            if name.isEmpty { throw ConsoleFailure(.badRequest, "the domain name in the path is empty; give it as /vms/NAME") }
            return name
        case .failure(let problem):
            throw ConsoleFailure(.badRequest, "the domain name '\(raw)' in the path is not valid percent-encoding: \(problem.message); "
                                 + "encode each byte of the UTF-8 name that is not a letter, digit, '-', '.', '_' or '~' as %XX")
        }
    }

    struct EncodingProblem: Error {
        var message: String
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

    static func cookie(_ request: Request, _ name: String) -> Substring? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name { return kv[1] }
            }
        }
        return nil
    }
}
