/// The one error shape of the management API: a code (which maps to the HTTP status), a
/// message for people, and optionally the underlying cause.
public struct APIError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Codable, Sendable, CaseIterable {
        /// The request is malformed: bad JSON, unknown field, wrong type, bad query.
        case badRequest = "bad_request"
        /// Well-formed but a value is out of range, a file is missing, a name is invalid.
        case invalidArgument = "invalid_argument"
        case notFound = "not_found"
        case methodNotAllowed = "method_not_allowed"
        /// A VM with that name exists already.
        case alreadyExists = "already_exists"
        /// The VM's state does not allow the operation (start a running VM, delete a running VM).
        case invalidState = "invalid_state"
        case payloadTooLarge = "payload_too_large"
        /// Something the request asks for is not implemented.
        case unsupported = "unsupported"
        /// The worker could not create or run the VM.
        case workerFailed = "worker_failed"
        case internalError = "internal"

        public var httpStatus: Int {
            switch self {
            case .badRequest: 400
            case .invalidArgument: 422
            case .notFound: 404
            case .methodNotAllowed: 405
            case .alreadyExists, .invalidState: 409
            case .payloadTooLarge: 413
            case .unsupported: 501
            case .workerFailed, .internalError: 500
            }
        }
    }

    public var code: Code
    public var message: String
    public var cause: String?

    public init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { cause.map { "\(message) (\($0))" } ?? message }
}

/// The JSON body of an error response: `{"error": {"code": ..., "message": ..., "cause": ...}}`.
public struct ErrorBody: Codable, Sendable, Equatable {
    public var error: APIError
    public init(_ error: APIError) { self.error = error }
}
