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
