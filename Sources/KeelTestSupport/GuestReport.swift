/// What the guest agent (`/init` of the default guest images) reported on the serial console.
/// Report lines look like `KEEL-GUEST key=value key2=value2 flag`; values never hold spaces and
/// lists are comma-separated (`none` when empty).
public struct GuestReport: Sendable {
    /// Every console line, in order (report lines included), for assertions on dmesg output.
    public var consoleLines: [String] = []
    /// Report values; a key reported twice keeps its last value.
    public var values: [String: String] = [:]
    /// Bare words on report lines (`ready`, `done`).
    public var flags: Set<String> = []
    /// The VMM's exit status (nil when it was killed by the harness).
    public var exitStatus: Int32?
    /// Seconds from starting the VMM process to the agent's `ready` line.
    public var secondsToReady: Double?
    /// Whether the harness had to kill the VMM because the guest did not finish in time.
    public var timedOut = false
    /// Seconds from starting the VMM to the first console line containing each watched text
    /// (see `bootGuest(watch:)`).
    public var secondsToLine: [String: Double] = [:]
    /// Host wall-clock time (UNIX seconds) when each report key last arrived, to compare a
    /// guest-reported time with the host's.
    public var hostTimeAtKey: [String: Double] = [:]

    public static let prefix = "KEEL-GUEST "

    public init() {}

    /// Feeds one console line; returns true when it was a report line.
    @discardableResult
    public mutating func consume(line rawLine: String, hostTime: Double? = nil) -> Bool {
        let line = rawLine.hasSuffix("\r") ? String(rawLine.dropLast()) : rawLine
        consoleLines.append(line)
        // The prefix may follow kernel output on the same line when the console interleaves.
        guard let range = line.range(of: Self.prefix) else { return false }
        for token in line[range.upperBound...].split(separator: " ", omittingEmptySubsequences: true) {
            if let eq = token.firstIndex(of: "=") {
                let key = String(token[..<eq])
                values[key] = String(token[token.index(after: eq)...])
                if let hostTime { hostTimeAtKey[key] = hostTime }
            } else {
                flags.insert(String(token))
            }
        }
        return true
    }

    public func int(_ key: String) -> Int? { values[key].flatMap { Int($0) } }
    public func double(_ key: String) -> Double? { values[key].flatMap { Double($0) } }

    /// A comma-separated list value; `none` and absent are empty.
    public func list(_ key: String) -> [String] {
        guard let v = values[key], v != "none", !v.isEmpty else { return [] }
        return v.split(separator: ",").map(String.init)
    }

    /// Console lines containing `text` (for dmesg-style assertions).
    public func lines(containing text: String) -> [String] {
        consoleLines.filter { $0.contains(text) }
    }

    public var tail: String { consoleLines.suffix(40).joined(separator: "\n") }
}
