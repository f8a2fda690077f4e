import ArgumentParser
import Foundation
import KeelManagement
import KeelSystem

/// Exit statuses of the management commands (documented in the README).
enum ManagementExit {
    /// keeld cannot be reached, or it failed (5xx).
    static let failure: Int32 = 1
    /// Invalid command line or request (400, 422, 501).
    static let invalid: Int32 = 2
    /// No such VM (404).
    static let notFound: Int32 = 3
    /// The name is taken, or the VM's state does not allow the operation (409).
    static let conflict: Int32 = 4
}

/// The `--socket` option every management command takes.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "keeld's API socket (default: $KEEL_SOCKET, else keeld.sock in keeld's default state directory).")
    var socket: String?

    var socketPath: String { socket ?? ManagementDefaults.socketPath() }
}

/// A failed API call, printed as `keel: error: <message>` with an exit status.
struct ClientFailure: Error {
    let message: String
    let status: Int32
}

/// The REST API over the Unix socket: one request per connection.
struct APIClient {
    let socketPath: String

    /// Sends a request; returns the response, whatever its status.
    func send(_ method: String, _ path: String, query: [String: String] = [:], body: [UInt8] = []) throws(ClientFailure) -> HTTPResponse {
        let connection = try connect()
        let request = HTTPRequest(method: method, path: path, query: query,
                                  headers: body.isEmpty ? [:] : ["Content-Type": "application/json"], body: body)
        do { try connection.sendAll(request.serialized()) } catch {
            throw ClientFailure(message: "cannot send to keeld at \(socketPath): \(error)", status: ManagementExit.failure)
        }
        var bytes: [UInt8] = []
        while true {
            guard let chunk = try? connection.read(maxCount: 65_536) else {
                throw ClientFailure(message: "reading keeld's answer failed", status: ManagementExit.failure)
            }
            if chunk.isEmpty { break }
            bytes += chunk
            if let response = HTTPParser.parseResponse(bytes, complete: false) { return response }
        }
        guard let response = HTTPParser.parseResponse(bytes, complete: true) else {
            throw ClientFailure(message: "keeld closed the connection without a valid answer", status: ManagementExit.failure)
        }
        return response
    }

    func connect() throws(ClientFailure) -> OwnedDescriptor {
        do { return try UnixSocket.connect(path: socketPath) } catch {
            let hint = error.errno == ENOENT || error.errno == ECONNREFUSED ? " (is keeld running? start it, or pass --socket)" : ""
            throw ClientFailure(message: "cannot reach keeld at \(socketPath): \(error)\(hint)", status: ManagementExit.failure)
        }
    }

    /// Sends a request and decodes a success body; an error response becomes a `ClientFailure`.
    func call<T: Decodable>(_ type: T.Type, _ method: String, _ path: String, query: [String: String] = [:],
                            body: [UInt8] = []) throws(ClientFailure) -> (T, [UInt8]) {
        let response = try send(method, path, query: query, body: body)
        try Self.check(response)
        do { return (try JSON.decode(type, from: response.body), response.body) } catch {
            throw ClientFailure(message: "unexpected answer from keeld: \(error)", status: ManagementExit.failure)
        }
    }

    static func check(_ response: HTTPResponse) throws(ClientFailure) {
        guard response.status >= 300 else { return }
        let message = (try? JSON.decode(ErrorBody.self, from: response.body))?.error.description
            ?? "HTTP \(response.status) \(String(decoding: response.body.prefix(200), as: UTF8.self))"
        let status: Int32 = switch response.status {
        case 404: ManagementExit.notFound
        case 409: ManagementExit.conflict
        case 400..<500, 501: ManagementExit.invalid
        default: ManagementExit.failure
        }
        throw ClientFailure(message: message, status: status)
    }

    static func vmPath(_ name: String, _ action: String? = nil) -> String {
        "/v1/vms/\(name)" + (action.map { "/\($0)" } ?? "")
    }
}

/// Runs `body`, turning a failure into `keel: error: ...` and its exit status.
func reportingFailures(_ body: () throws(ClientFailure) -> Void) throws {
    do { try body() } catch {
        FileHandle.standardError.write(Data("keel: error: \(error.message)\n".utf8))
        throw ExitCode(error.status)
    }
}

func printJSON(_ bytes: [UInt8]) {
    // keeld's JSON, re-indented for people.
    if let object = try? JSONSerialization.jsonObject(with: Data(bytes)),
       let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
        print(String(decoding: pretty, as: UTF8.self))
    } else {
        print(String(decoding: bytes, as: UTF8.self))
    }
}
