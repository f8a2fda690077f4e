import Foundation
import KeelManagement
import Testing

/// docs/openapi.yaml and the routes keeld serves (`APIRoutes.all`) are the same set; the
/// document's enums match the code's. A route added on one side only fails here.
struct ContractTests {
    static let documentPath: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
        }
        return url.appendingPathComponent("docs/openapi.yaml").path
    }()

    struct Operation: Hashable, CustomStringConvertible {
        var method: String
        var path: String
        var operationId: String
        var description: String { "\(method) \(path) (\(operationId))" }
    }

    /// The operations under `paths:` (indentation-based: 2 = path, 4 = method, 6 = operationId).
    static func documentedOperations() throws -> Set<Operation> {
        let text = try String(contentsOfFile: documentPath, encoding: .utf8)
        var operations: Set<Operation> = []
        var inPaths = false
        var path = ""
        var method: String?
        for line in text.components(separatedBy: "\n") {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, !line.isEmpty, !line.hasPrefix(" ") { break }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
                method = nil
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let word = line.trimmingCharacters(in: .whitespaces).dropLast()
                method = ["get", "post", "put", "delete", "patch"].contains(String(word)) ? word.uppercased() : nil
            } else if let m = method, line.hasPrefix("      operationId: ") {
                operations.insert(Operation(method: m, path: path, operationId: String(line.dropFirst("      operationId: ".count))))
            }
        }
        return operations
    }

    @Test func documentAndRoutesMatch() throws {
        let documented = try Self.documentedOperations()
        let served = Set(APIRoutes.all.map { Operation(method: $0.method, path: $0.template, operationId: $0.id.rawValue) })
        #expect(!documented.isEmpty)
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served))")
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented))")
        #expect(Set(RouteID.allCases) == Set(APIRoutes.all.map(\.id)))
    }

    func enumValues(after marker: String, in text: String) -> Set<String> {
        guard let start = text.range(of: marker) else { return [] }
        let rest = text[start.upperBound...]
        guard let open = rest.firstIndex(of: "["), let close = rest.firstIndex(of: "]") else { return [] }
        return Set(rest[rest.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
    }

    @Test func enumsMatch() throws {
        let text = try String(contentsOfFile: Self.documentPath, encoding: .utf8)
        #expect(enumValues(after: "    State:\n      type: string\n      enum:", in: text) == Set(VMState.allCases.map(\.rawValue)))
        #expect(enumValues(after: "            code:\n              type: string\n              enum:", in: text)
                == Set(APIError.Code.allCases.map(\.rawValue)))
        let specFields = text.components(separatedBy: "    VMSpec:")[1].components(separatedBy: "    ExitInfo:")[0]
        for field in VMSpec.fieldNames { #expect(specFields.contains("        \(field):"), "VMSpec.\(field) not documented") }
    }

    @Test func matching() {
        #expect(APIRoutes.match(method: "GET", path: "/v1/vms") == .found(APIRoutes.all[1], parameters: [:]))
        guard case .found(let route, let parameters) = APIRoutes.match(method: "POST", path: "/v1/vms/web-1/start/") else {
            Issue.record("no match"); return
        }
        #expect(route.id == .startVM && parameters == ["name": "web-1"])
        #expect(APIRoutes.match(method: "PUT", path: "/v1/vms/a") == .methodNotAllowed(allowed: ["GET", "DELETE"]))
        #expect(APIRoutes.match(method: "GET", path: "/v1/vms/a/b/c") == .notFound)
        #expect(APIRoutes.match(method: "GET", path: "/v2/vms") == .notFound)
        #expect(APIRoutes.match(method: "GET", path: "/v1/vms//events") == .notFound)
    }
}
