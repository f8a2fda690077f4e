import Foundation
import KeelManagement
import KeelSystem

/// The REST API on the Unix socket: one thread per connection, one request per connection
/// (`Connection: close`), routes from `APIRoutes` (the table `docs/openapi.yaml` documents).
final class APIServer: Sendable {
    let inventory: Inventory
    let listener: OwnedDescriptor
    let stateDirectory: String

    init(inventory: Inventory, listener: OwnedDescriptor, stateDirectory: String) {
        self.inventory = inventory
        self.listener = listener
        self.stateDirectory = stateDirectory
    }

    /// Accepts connections forever.
    func run() -> Never {
        while true {
            guard let connection = try? UnixSocket.accept(listener) else { usleep(10_000); continue }
            do {
                _ = try NamedThread(name: "keeld-conn") { [self] in serve(connection) }
            } catch {
                _ = try? connection.sendAll(HTTPResponse.error(APIError(.internalError, "cannot start a thread")).serialized())
            }
        }
    }

    enum Outcome {
        case response(HTTPResponse)
        /// Switch the connection to the console of the worker at this control socket.
        case console(String)
    }

    func serve(_ connection: OwnedDescriptor) {
        connection.setReceiveTimeout(milliseconds: 30_000)
        let request: HTTPRequest
        switch readRequest(connection) {
        case .success(let r): request = r
        case .failure(let error):
            _ = try? connection.sendAll(HTTPResponse.error(error).serialized())
            return
        case nil: return
        }
        connection.setReceiveTimeout(milliseconds: 0)
        let outcome: Outcome
        do { outcome = try handle(request) } catch let error as APIError {
            outcome = .response(.error(error))
        } catch {
            outcome = .response(.error(APIError(.internalError, "\(error)")))
        }
        switch outcome {
        case .response(let response): _ = try? connection.sendAll(response.serialized())
        case .console(let socket): proxyConsole(connection, socket)
        }
    }

    /// Reads one request; nil when the client went away before sending one.
    private func readRequest(_ connection: OwnedDescriptor) -> Result<HTTPRequest, APIError>? {
        var bytes: [UInt8] = []
        var headEnd: Int?
        while headEnd == nil {
            guard bytes.count <= HTTPParser.maximumHeadBytes else { return .failure(APIError(.badRequest, "request head too large")) }
            guard let chunk = try? connection.read(maxCount: 8192), !chunk.isEmpty else {
                return bytes.isEmpty ? nil : .failure(APIError(.badRequest, "incomplete request"))
            }
            bytes += chunk
            headEnd = HTTPParser.headEnd(bytes)
        }
        guard let headEnd else { return nil }
        do {
            var (request, length) = try HTTPParser.parseRequestHead(Array(bytes[..<headEnd]))
            guard length <= Validation.maximumBodyBytes else {
                return .failure(APIError(.payloadTooLarge, "request body of \(length) bytes; the limit is \(Validation.maximumBodyBytes)"))
            }
            var body = Array(bytes[headEnd...])
            while body.count < length {
                guard let chunk = try? connection.read(maxCount: min(65_536, length - body.count)), !chunk.isEmpty else {
                    return .failure(APIError(.badRequest, "request body shorter than its Content-Length"))
                }
                body += chunk
            }
            request.body = Array(body.prefix(length))
            return .success(request)
        } catch {
            return .failure(error)
        }
    }

    func handle(_ request: HTTPRequest) throws -> Outcome {
        let route: Route
        let parameters: [String: String]
        switch APIRoutes.match(method: request.method, path: request.path) {
        case .notFound: throw APIError(.notFound, "no such API path: \(request.path)")
        case .methodNotAllowed(let allowed):
            throw APIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)", cause: allowed.joined(separator: ", "))
        case .found(let r, let p): (route, parameters) = (r, p)
        }
        let allowedQuery: Set<String> = switch route.id {
        case .stopVM: ["force"]
        case .listEvents: ["limit"]
        default: []
        }
        if let unknown = request.query.keys.sorted().first(where: { !allowedQuery.contains($0) }) {
            throw APIError(.badRequest, "unknown query parameter '\(unknown)'")
        }
        if route.method != "POST" || route.id != .createVM, !request.body.isEmpty, route.id != .stopVM {
            throw APIError(.badRequest, "this request takes no body")
        }
        let name = parameters["name"] ?? ""
        switch route.id {
        case .getService:
            return .response(.json(200, ServiceInfo(pid: DetachedProcess.currentID, stateDirectory: stateDirectory,
                                                    vmCount: inventory.count)))
        case .listVMs:
            return .response(.json(200, inventory.list()))
        case .createVM:
            return .response(.json(201, try inventory.create(try decodeSpec(request.body))))
        case .getVM:
            return .response(.json(200, try inventory.get(name)))
        case .deleteVM:
            try inventory.delete(name)
            return .response(HTTPResponse(status: 204))
        case .startVM:
            return .response(.json(200, try inventory.start(name)))
        case .stopVM:
            let force = try boolean(request.query["force"], "force")
            return .response(.json(202, try inventory.stop(name, force: force)))
        case .killVM:
            return .response(.json(202, try inventory.kill(name)))
        case .pauseVM:
            return .response(.json(200, try inventory.pause(name, resume: false)))
        case .resumeVM:
            return .response(.json(200, try inventory.pause(name, resume: true)))
        case .listEvents:
            var limit = 1000
            if let text = request.query["limit"] {
                guard let n = Int(text), (1...100_000).contains(n) else {
                    throw APIError(.badRequest, "limit '\(text)': must be a number from 1 to 100000")
                }
                limit = n
            }
            return .response(.json(200, try inventory.events(name, limit: limit)))
        case .attachConsole:
            return .console(try inventory.consoleSocket(name))
        }
    }

    private func boolean(_ text: String?, _ key: String) throws(APIError) -> Bool {
        switch text {
        case nil, "false", "0": return false
        case "true", "1", "": return true
        case let other?: throw APIError(.badRequest, "\(key) '\(other)': must be true or false")
        }
    }

    /// Decodes a create request strictly: a JSON object with known fields of the right types.
    private func decodeSpec(_ body: [UInt8]) throws(APIError) -> VMSpec {
        guard !body.isEmpty else { throw APIError(.badRequest, "missing request body: a JSON VM specification") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw APIError(.badRequest, "the request body is not a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !VMSpec.fieldNames.contains($0) }) {
            throw APIError(.badRequest, "unknown field '\(unknown)' (fields: \(VMSpec.fieldNames.sorted().joined(separator: ", ")))")
        }
        do { return try JSON.decode(VMSpec.self, from: body) } catch {
            throw APIError(.badRequest, "invalid VM specification: \(describe(error))")
        }
    }

    private func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(let type, let context):
            return "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' must be \(type == String.self ? "a string" : "\(type)")"
        case DecodingError.valueNotFound(_, let context):
            return "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' must not be null"
        case DecodingError.dataCorrupted(let context): return context.debugDescription
        default: return "\(error)"
        }
    }

    /// Hands the connection over to the worker's console: 101, then bytes both ways.
    private func proxyConsole(_ client: OwnedDescriptor, _ socket: String) {
        let worker: OwnedDescriptor
        let early: [UInt8]
        do {
            worker = try UnixSocket.connect(path: socket)
            let (reply, rest) = try WorkerLink.exchange(worker, "console", timeoutMilliseconds: 2000)
            guard reply.ok else { throw WorkerLink.Failure(description: reply.message) }
            early = rest
        } catch {
            _ = try? client.sendAll(HTTPResponse.error(APIError(.workerFailed, "cannot attach to the console: \(error)")).serialized())
            return
        }
        let head = HTTPResponse(status: 101, headers: ["Upgrade": "keel-console", "Connection": "Upgrade"])
        guard (try? client.sendAll(head.serialized() + early)) != nil else { return }
        let toClient = try? NamedThread(name: "keeld-console") {
            while let chunk = try? worker.read(maxCount: 16_384), !chunk.isEmpty {
                if (try? client.sendAll(chunk)) == nil { break }
            }
            client.shutdownBoth()
            worker.shutdownBoth()
        }
        while let chunk = try? client.read(maxCount: 4096), !chunk.isEmpty {
            if (try? worker.sendAll(chunk)) == nil { break }
        }
        worker.shutdownBoth()
        client.shutdownBoth()
        toClient?.join()
    }
}
