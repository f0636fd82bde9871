import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Building responses.
enum ConsoleResponse {
    /// No scripts, no framing, no sniffing, no caching, no referrer to other sites.
    static let securityHeaders: HTTPFields = {
        var h: HTTPFields = [
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .xContentTypeOptions: "nosniff",
            .cacheControl: "no-store",
        ]
        for (name, value) in [("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY")] {
            if let n = HTTPField.Name(name) { h.append(HTTPField(name: n, value: value)) }
        }
        return h
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? enc.encode(value) else {
            return jsonError(.internalServerError, "cannot encode the answer as JSON")
        }
        return raw(status, "application/json", data)
    }

    struct ErrorBody: Encodable {
        var error: String
        var status: Int
    }

    static func jsonError(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        var r = json(ErrorBody(error: message, status: status.code), status: status)
        r.headers.append(contentsOf: headers)
        return r
    }

    static func raw(_ status: HTTPResponse.Status, _ contentType: String, _ data: some Sequence<UInt8>) -> Response {
        var headers = securityHeaders
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func html(_ status: HTTPResponse.Status = .ok, _ page: String, headers: HTTPFields = [:]) -> Response {
        var r = raw(status, "text/html; charset=utf-8", Array(page.utf8))
        r.headers.append(contentsOf: headers)
        return r
    }

    static func htmlError(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        let body = "<h1>\(status.code) \(HTML.escape(status.reasonPhrase))</h1><p class=\"error\" id=\"error\">\(HTML.escape(message))</p><p><a href=\"/\">Back to the VM list</a></p>"
        return html(status, HTML.page(title: "\(status.code) \(status.reasonPhrase)", body: body), headers: headers)
    }
}
