import Foundation

/// A minimal HTTP/1.1 for the API socket: one request per connection (`Connection: close`),
/// bodies with Content-Length only. Parsing is pure; keeld and the CLI do the socket I/O.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The path, percent-decoded, without the query.
    public var path: String
    public var query: [String: String]
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The request as bytes (the client side).
    public func serialized() -> [UInt8] {
        var target = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
        if !query.isEmpty {
            target += "?" + query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: keeld\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) where name != "content-length" {
            head += "\(name): \(value)\r\n"
        }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json<T: Encodable>(_ status: Int, _ value: T) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: JSON.encode(value) + [0x0A])
    }

    public static func error(_ error: APIError) -> HTTPResponse {
        var response = json(error.code.httpStatus, ErrorBody(error))
        if error.code == .methodNotAllowed, let allow = error.cause { response.headers["Allow"] = allow }
        return response
    }

    public func serialized() -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(HTTPResponse.reason(status))\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        if status != 101 { head += "Content-Length: \(body.count)\r\nConnection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Payload Too Large"
        case 422: "Unprocessable Entity"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        default: "Status \(status)"
        }
    }
}

public enum HTTPParser {
    public static let maximumHeadBytes = 16 * 1024

    /// The end of the head (index just past CRLFCRLF), nil if not all received yet.
    public static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    /// Parses a request head (through CRLFCRLF). The body is filled in by the caller, who reads
    /// `contentLength` more bytes.
    public static func parseRequestHead(_ head: [UInt8]) throws(APIError) -> (request: HTTPRequest, contentLength: Int) {
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else {
            throw APIError(.badRequest, "malformed HTTP request line")
        }
        let method = String(requestLine[0])
        guard !method.isEmpty, method.allSatisfy({ $0.isUppercase }) else { throw APIError(.badRequest, "malformed HTTP method") }
        let target = String(requestLine[1])
        guard target.hasPrefix("/") else { throw APIError(.badRequest, "request target must be a path") }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw APIError(.badRequest, "malformed header line") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["transfer-encoding"] != nil { throw APIError(.badRequest, "chunked request bodies are not supported; send Content-Length") }
        var contentLength = 0
        if let value = headers["content-length"] {
            guard let n = Int(value), n >= 0 else { throw APIError(.badRequest, "bad Content-Length") }
            contentLength = n
        }
        let (rawPath, rawQuery) = splitTarget(target)
        guard let path = rawPath.removingPercentEncoding else { throw APIError(.badRequest, "bad percent-encoding in the path") }
        var query: [String: String] = [:]
        for pair in rawQuery.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = String(parts[0]).removingPercentEncoding,
                  let value = (parts.count > 1 ? String(parts[1]) : "").removingPercentEncoding else {
                throw APIError(.badRequest, "bad percent-encoding in the query")
            }
            query[key] = value
        }
        return (HTTPRequest(method: method, path: path, query: query, headers: headers), contentLength)
    }

    /// Parses a whole response (head and body); nil if incomplete.
    public static func parseResponse(_ bytes: [UInt8], complete: Bool) -> HTTPResponse? {
        guard let end = headEnd(bytes) else { return nil }
        let text = String(decoding: bytes[..<(end - 4)], as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = Array(bytes[end...])
        if status == 101 { return HTTPResponse(status: status, headers: headers, body: body) }
        if let length = headers["content-length"].flatMap({ Int($0) }) {
            guard body.count >= length else { return nil }
            return HTTPResponse(status: status, headers: headers, body: Array(body.prefix(length)))
        }
        return complete ? HTTPResponse(status: status, headers: headers, body: body) : nil
    }

    static func splitTarget(_ target: String) -> (String, String) {
        guard let q = target.firstIndex(of: "?") else { return (target, "") }
        return (String(target[..<q]), String(target[target.index(after: q)...]))
    }
}
