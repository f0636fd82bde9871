import HTTPTypes
import SVirt

/// A failure with the HTTP status it gives.
struct ConsoleFailure: Error {
    var status: HTTPResponse.Status
    var message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The status and message for any error a handler throws.
    init(_ error: any Error) {
        switch error {
        case let f as ConsoleFailure:
            self = f
        case let e as SVirtError:
            let status: HTTPResponse.Status
            switch e.code {
            case .notFound: status = .notFound
            case .state, .alreadyExists, .levelConflict, .exhausted: status = .conflict
            case .invalidDomain, .configuration, .invalidLevel: status = .badRequest
            case .registryUnavailable: status = .serviceUnavailable
            default: status = .internalServerError
            }
            self.init(status, e.message)
        default:
            self.init(.internalServerError, "\(error)")
        }
    }
}
