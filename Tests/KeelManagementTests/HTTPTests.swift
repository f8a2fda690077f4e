import KeelManagement
import Testing

/// The small HTTP/1.1 the API speaks: request heads, responses, error bodies.
struct HTTPTests {
    @Test func requestRoundTrip() throws {
        let request = HTTPRequest(method: "POST", path: "/v1/vms/a/stop", query: ["force": "true"], body: Array("{}".utf8))
        let bytes = request.serialized()
        let end = try #require(HTTPParser.headEnd(bytes))
        var (parsed, length) = try HTTPParser.parseRequestHead(Array(bytes[..<end]))
        parsed.body = Array(bytes[end...])
        #expect(length == 2)
        #expect(parsed.method == "POST" && parsed.path == "/v1/vms/a/stop" && parsed.query == ["force": "true"])
        #expect(parsed.body == Array("{}".utf8))
    }

    @Test func percentEncodedPathsAreDecoded() throws {
        let (request, _) = try HTTPParser.parseRequestHead(Array("GET /v1/vms/a%20b?limit=5 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(request.path == "/v1/vms/a b" && request.query == ["limit": "5"])
    }

    @Test(arguments: ["GARBAGE\r\n\r\n", "get / HTTP/1.1\r\n\r\n", "GET vms HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                      "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET /%zz HTTP/1.1\r\n\r\n"])
    func malformedRequestsAreBadRequests(_ text: String) {
        #expect(throws: APIError.self) { try HTTPParser.parseRequestHead(Array(text.utf8)) }
        do { _ = try HTTPParser.parseRequestHead(Array(text.utf8)) } catch { #expect(error.code.httpStatus == 400) }
    }

    @Test func errorResponses() throws {
        let response = HTTPResponse.error(APIError(.notFound, "no VM named 'x'"))
        let parsed = try #require(HTTPParser.parseResponse(response.serialized(), complete: false))
        #expect(parsed.status == 404)
        #expect(try JSON.decode(ErrorBody.self, from: parsed.body) == ErrorBody(APIError(.notFound, "no VM named 'x'")))
        let text = String(decoding: parsed.body, as: UTF8.self)
        #expect(text.contains(#""code":"not_found""#))
        // Incomplete bodies are not parsed as complete.
        #expect(HTTPParser.parseResponse(Array(response.serialized().dropLast(3)), complete: false) == nil)
    }

    @Test func statusCodes() {
        let expected: [APIError.Code: Int] = [.badRequest: 400, .invalidArgument: 422, .notFound: 404, .methodNotAllowed: 405,
                                              .alreadyExists: 409, .invalidState: 409, .payloadTooLarge: 413, .unsupported: 501,
                                              .workerFailed: 500, .internalError: 500]
        for code in APIError.Code.allCases { #expect(code.httpStatus == expected[code]) }
    }
}
