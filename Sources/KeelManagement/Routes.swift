/// The API's routes: the single table keeld dispatches on. `docs/openapi.yaml` documents the
/// same routes; a contract test keeps the two in step.
public enum RouteID: String, Sendable, CaseIterable {
    case getService, listVMs, createVM, getVM, deleteVM, startVM, stopVM, killVM, pauseVM, resumeVM,
         listEvents, attachConsole
}

public struct Route: Sendable, Equatable {
    public var id: RouteID
    public var method: String
    /// Path template with `{name}` parameters, as in the OpenAPI document.
    public var template: String
}

public enum APIRoutes {
    public static let all: [Route] = [
        Route(id: .getService, method: "GET", template: "/v1"),
        Route(id: .listVMs, method: "GET", template: "/v1/vms"),
        Route(id: .createVM, method: "POST", template: "/v1/vms"),
        Route(id: .getVM, method: "GET", template: "/v1/vms/{name}"),
        Route(id: .deleteVM, method: "DELETE", template: "/v1/vms/{name}"),
        Route(id: .startVM, method: "POST", template: "/v1/vms/{name}/start"),
        Route(id: .stopVM, method: "POST", template: "/v1/vms/{name}/stop"),
        Route(id: .killVM, method: "POST", template: "/v1/vms/{name}/kill"),
        Route(id: .pauseVM, method: "POST", template: "/v1/vms/{name}/pause"),
        Route(id: .resumeVM, method: "POST", template: "/v1/vms/{name}/resume"),
        Route(id: .listEvents, method: "GET", template: "/v1/vms/{name}/events"),
        Route(id: .attachConsole, method: "POST", template: "/v1/vms/{name}/console"),
    ]

    public enum Match: Equatable {
        case found(Route, parameters: [String: String])
        /// The path exists with other methods.
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    /// Matches a (percent-decoded) path. A trailing slash is ignored.
    public static func match(method: String, path: String) -> Match {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let segments = trimmed.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var allowed: [String] = []
        for route in all {
            let pattern = route.template.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard pattern.count == segments.count else { continue }
            var parameters: [String: String] = [:]
            var matched = true
            for (p, s) in zip(pattern, segments) {
                if p.hasPrefix("{") && p.hasSuffix("}") {
                    guard !s.isEmpty else { matched = false; break }
                    parameters[String(p.dropFirst().dropLast())] = String(s)
                } else if p != s {
                    matched = false; break
                }
            }
            guard matched else { continue }
            if route.method == method { return .found(route, parameters: parameters) }
            allowed.append(route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }
}
