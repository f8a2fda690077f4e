/// The worker's control socket (`keel-worker run --run-dir DIR` serves `DIR/control.sock`), a
/// line protocol the Foundation-free worker speaks by hand:
///
///     request:  one command line: status | pause | resume | shutdown | console
///     reply:    "ok" or "error <message>", then "key=value" lines, then an empty line
///
/// After `console` answers ok, the connection carries the serial console both ways: first the
/// recent output the worker kept, then live output; bytes the client sends go to the guest.
/// When the VM ends, the worker writes `DIR/exit` ("status=N" and "reason=..." lines).
public enum WorkerProtocol {
    public static let controlSocket = "control.sock"
    public static let exitRecord = "exit"
    public static let log = "worker.log"

    public struct Reply: Sendable, Equatable {
        public var ok: Bool
        public var message: String
        public var fields: [String: String]

        public init(ok: Bool, message: String, fields: [String: String]) {
            self.ok = ok
            self.message = message
            self.fields = fields
        }
    }

    /// Parses a reply (everything up to and including the empty line); nil if incomplete.
    public static func parseReply(_ bytes: [UInt8]) -> Reply? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\n\n") else { return nil }
        var lines = text[..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return nil }
        let first = lines.removeFirst()
        let ok = first == "ok"
        let message = ok ? "" : String(first.dropFirst("error ".count))
        return Reply(ok: ok, message: message, fields: fields(lines))
    }

    /// Parses an exit record; nil if it has no status.
    public static func parseExitRecord(_ bytes: [UInt8]) -> (status: Int32, reason: String)? {
        let f = fields(String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init))
        guard let status = f["status"].flatMap({ Int32($0) }) else { return nil }
        return (status, f["reason"] ?? "")
    }

    static func fields(_ lines: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for line in lines {
            guard let eq = line.firstIndex(of: "=") else { continue }
            result[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return result
    }
}
