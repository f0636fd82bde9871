import Foundation
import Hummingbird
import NIOCore

/// Reading requests from Hummingbird: the body, the form, the path and the cookies; the parsing itself is in
/// ConsoleRequestParsing.swift.
extension ConsoleRequest {
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

    /// The domain name in the path (`/vms/{name}`), percent-decoded: a client encodes each byte of the UTF-8 name
    /// that is not an unreserved character as `%XX` (the router hands the parameter over as it came). An encoding
    /// that is not `%` and two hex digits, bytes that are not UTF-8, and NUL are a 400.
    static func domainName(_ context: ConsoleContext) throws -> String {
        switch domainName(raw: context.parameters.get("name")) {
        case .success(let name): return name
        case .failure(let problem): throw ConsoleFailure(.badRequest, problem.message)
        }
    }

    static func cookie(_ request: Request, _ name: String) -> Substring? {
        cookie(request.headers[values: .cookie], name)
    }
}
