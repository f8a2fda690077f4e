import Foundation

/// The state directory's file formats. Layout:
///
///     <state-dir>/keeld.lock            held by the running keeld (one per state directory)
///     <state-dir>/keeld.sock            the API socket (default)
///     <state-dir>/vms/<name>/vm.json    the configuration: written once at create
///     <state-dir>/vms/<name>/state.json lifecycle state, worker PID, last exit: replaced atomically
///     <state-dir>/vms/<name>/events.jsonl  the event log, one JSON object per line
///     <state-dir>/run/<id>/             a running worker's files: control.sock, worker.log, exit
///
/// JSON files are written whole to a temporary file, fsynced and renamed (never edited in place).
/// A file that does not decode is reported (the VM is listed as `corrupt`), never dropped.
public enum StateFiles {
    public static let formatVersion = 1
    public static let lockFile = "keeld.lock"
    public static let socketFile = "keeld.sock"
    public static let vmsDirectory = "vms"
    public static let runDirectory = "run"
    public static let configFile = "vm.json"
    public static let stateFile = "state.json"
    public static let eventsFile = "events.jsonl"
    /// Prefix of a directory that holds a VM being created (renamed into place when complete).
    public static let creatingPrefix = ".creating-"
    /// Prefix of a directory that holds a VM being deleted.
    public static let deletingPrefix = ".deleting-"

    /// The longest state-directory path whose worker control sockets fit in `sun_path`.
    public static func maximumStateDirectoryLength(socketPathLimit: Int = 107) -> Int {
        socketPathLimit - "/run/".count - idLength - "/control.sock".count
    }

    /// VM ids are 12 hex digits (short enough for socket paths under the state directory).
    public static let idLength = 12

    public static func newID() -> String {
        String(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(idLength))
    }
}

/// `vm.json`: the configuration, immutable after create.
public struct StoredConfig: Codable, Sendable, Equatable {
    public var formatVersion: Int
    public var id: String
    public var createdAt: String
    public var spec: VMSpec

    public init(id: String, createdAt: String, spec: VMSpec) {
        formatVersion = StateFiles.formatVersion
        self.id = id
        self.createdAt = createdAt
        self.spec = spec
    }
}

/// `state.json`: where the VM's lifecycle is, rewritten on every change.
public struct StoredState: Codable, Sendable, Equatable {
    public var formatVersion: Int
    public var state: VMState
    public var workerPID: Int32?
    public var startedAt: String?
    public var stopRequest: StopRequest?
    public var lastExit: ExitInfo?
    public var lastError: String?

    public init(state: VMState = .stopped) {
        formatVersion = StateFiles.formatVersion
        self.state = state
    }
}

/// A state-directory file that could not be used.
public struct CorruptFile: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

public enum Persistence {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] { JSON.encode(value, pretty: true) + [0x0A] }

    /// Decodes a stored file, reporting empty, truncated or invalid content and unknown format
    /// versions as `CorruptFile`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], path: String) throws(CorruptFile) -> T {
        guard !bytes.isEmpty else { throw CorruptFile(path: path, reason: "empty file (a write did not finish?)") }
        let version: Int
        do { version = try JSON.decode(Versioned.self, from: bytes).formatVersion } catch {
            throw CorruptFile(path: path, reason: "not a valid \(T.self) file: \(describe(error))")
        }
        guard version == StateFiles.formatVersion else {
            throw CorruptFile(path: path, reason: "format version \(version), this keeld reads \(StateFiles.formatVersion)")
        }
        do { return try JSON.decode(type, from: bytes) } catch {
            throw CorruptFile(path: path, reason: "not a valid \(T.self) file: \(describe(error))")
        }
    }

    /// One event log line (JSON, newline-terminated).
    public static func eventLine(_ event: VMEvent) -> [UInt8] { JSON.encode(event) + [0x0A] }

    /// Parses an event log; a line that does not decode (a torn last write) becomes an `error`
    /// event saying so, rather than vanishing.
    public static func parseEvents(_ bytes: [UInt8]) -> [VMEvent] {
        bytes.split(separator: 0x0A).compactMap { line in
            if let event = try? JSON.decode(VMEvent.self, from: Array(line)) { return event }
            return VMEvent(time: "", kind: .error, message: "unreadable event log line: \(String(decoding: line.prefix(120), as: UTF8.self))")
        }
    }

    private struct Versioned: Decodable { var formatVersion: Int }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context): return context.debugDescription
        case DecodingError.keyNotFound(let key, _): return "missing '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default: return "\(error)"
        }
    }
}
