import Foundation

/// A VM's lifecycle state as keeld reports it (Hyper-V's Get-VM "State").
public enum VMState: String, Codable, Sendable, CaseIterable {
    /// Configured, no worker: never started, powered off, or stopped.
    case stopped
    /// A worker was started and is creating the partition.
    case starting
    case running
    /// Every virtual processor is parked; the guest runs no code.
    case paused
    /// keeld asked the worker to stop (graceful shutdown or turn-off in progress).
    case stopping
    /// The worker or the guest died without being asked to stop (killed worker, guest crash,
    /// host error while running).
    case crashed
    /// The VM's files in the state directory cannot be read; only delete is possible.
    case corrupt

    /// A worker process belongs to the VM in this state.
    public var hasWorker: Bool { self == .starting || self == .running || self == .paused || self == .stopping }
}

/// A raw disk image on the synthetic SCSI controller (LUN order = array order).
public struct DiskSpec: Codable, Sendable, Equatable {
    public var path: String
    public var readOnly: Bool

    public init(path: String, readOnly: Bool = false) {
        self.path = path
        self.readOnly = readOnly
    }

    enum CodingKeys: String, CodingKey { case path, readOnly }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
    }

    /// Parses the CLI form `PATH[,readonly]` (also `ro` and `rw`), as `keel run --disk` does.
    public static func parse(_ text: String) throws(APIError) -> DiskSpec {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let path = parts.removeFirst()
        guard !path.isEmpty else { throw APIError(.invalidArgument, "disk '\(text)': missing the image path") }
        var disk = DiskSpec(path: path)
        for option in parts {
            switch option {
            case "readonly", "ro": disk.readOnly = true
            case "rw": disk.readOnly = false
            default: throw APIError(.invalidArgument, "disk '\(text)': unknown option '\(option)' (use PATH[,readonly])")
            }
        }
        return disk
    }
}

/// A synthetic network adapter bridged to a host TAP interface, as `keel run --net` takes it.
public struct NetworkSpec: Codable, Sendable, Equatable {
    /// Host TAP interface name (opened, or created if keeld's user may).
    public var tap: String
    /// MAC address `XX:XX:XX:XX:XX:XX`; nil for the worker's stable default (00:15:5d:…).
    public var mac: String?

    public init(tap: String, mac: String? = nil) {
        self.tap = tap
        self.mac = mac
    }

    /// Parses the CLI form `tap=NAME[,mac=XX:XX:XX:XX:XX:XX]`.
    public static func parse(_ text: String) throws(APIError) -> NetworkSpec {
        var tap: String?
        var mac: String?
        for option in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            switch (parts.first, parts.count) {
            case ("tap", 2): tap = parts[1]
            case ("mac", 2): mac = parts[1]
            default: throw APIError(.invalidArgument, "network '\(text)': unknown option '\(option)' (use tap=NAME[,mac=...])")
            }
        }
        guard let tap else { throw APIError(.invalidArgument, "network '\(text)': missing tap=NAME") }
        return NetworkSpec(tap: tap, mac: mac)
    }

    /// The `keel-worker run --net` value.
    public var workerArgument: String { "tap=\(tap)" + (mac.map { ",mac=\($0)" } ?? "") }
}

/// What `POST /v1/vms` takes (≈ New-VM): the VM's configuration.
public struct VMSpec: Codable, Sendable, Equatable {
    public var name: String
    public var memoryMiB: Int
    public var cpus: Int
    public var kernel: String
    public var initrd: String?
    public var commandLine: String
    public var disks: [DiskSpec]
    public var networks: [NetworkSpec]
    /// How long a graceful stop waits for the guest before the worker powers it off.
    public var shutdownTimeoutSeconds: Int

    public static let defaultMemoryMiB = 512
    public static let defaultCPUs = 1
    public static let defaultCommandLine = "console=ttyS0"
    public static let defaultShutdownTimeoutSeconds = 30

    public init(name: String, memoryMiB: Int = defaultMemoryMiB, cpus: Int = defaultCPUs, kernel: String,
                initrd: String? = nil, commandLine: String = defaultCommandLine, disks: [DiskSpec] = [],
                networks: [NetworkSpec] = [], shutdownTimeoutSeconds: Int = defaultShutdownTimeoutSeconds) {
        self.name = name
        self.memoryMiB = memoryMiB
        self.cpus = cpus
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
        self.disks = disks
        self.networks = networks
        self.shutdownTimeoutSeconds = shutdownTimeoutSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, memoryMiB, cpus, kernel, initrd, commandLine, disks, networks, shutdownTimeoutSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        memoryMiB = try c.decodeIfPresent(Int.self, forKey: .memoryMiB) ?? Self.defaultMemoryMiB
        cpus = try c.decodeIfPresent(Int.self, forKey: .cpus) ?? Self.defaultCPUs
        kernel = try c.decode(String.self, forKey: .kernel)
        initrd = try c.decodeIfPresent(String.self, forKey: .initrd)
        commandLine = try c.decodeIfPresent(String.self, forKey: .commandLine) ?? Self.defaultCommandLine
        disks = try c.decodeIfPresent([DiskSpec].self, forKey: .disks) ?? []
        networks = try c.decodeIfPresent([NetworkSpec].self, forKey: .networks) ?? []
        shutdownTimeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .shutdownTimeoutSeconds)
            ?? Self.defaultShutdownTimeoutSeconds
    }

    /// The JSON keys a create request may hold.
    public static let fieldNames: Set<String> = Set(CodingKeys.allCases.map(\.rawValue))

    /// The `keel-worker run` options for this configuration (the worker validates them again).
    public var workerArguments: [String] {
        var arguments = ["--kernel", kernel]
        if let initrd { arguments += ["--initrd", initrd] }
        arguments += ["--cmdline", commandLine, "--memory", "\(memoryMiB)", "--cpus", "\(cpus)"]
        for disk in disks { arguments += ["--disk", disk.path + (disk.readOnly ? ",readonly" : "")] }
        for network in networks { arguments += ["--net", network.workerArgument] }
        arguments += ["--shutdown-timeout", "\(shutdownTimeoutSeconds)"]
        return arguments
    }
}

/// How a worker ended, as keeld saw it.
public struct ExitInfo: Codable, Sendable, Equatable {
    /// The worker's exit status, when it exited.
    public var status: Int32?
    /// The signal that ended the worker, when one did.
    public var signal: Int32?
    /// What happened, in words ("guest powered off", "worker killed by signal 9", ...).
    public var reason: String
    public var time: String

    public init(status: Int32? = nil, signal: Int32? = nil, reason: String, time: String) {
        self.status = status
        self.signal = signal
        self.reason = reason
        self.time = time
    }
}

/// One VM as the API reports it (≈ Get-VM).
public struct VMInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var state: VMState
    /// The configuration; nil only for a corrupt entry.
    public var spec: VMSpec?
    public var createdAt: String?
    /// The worker process, while one runs.
    public var workerPID: Int32?
    public var startedAt: String?
    /// Milliseconds from spawning the worker to its control socket answering (partition built,
    /// vCPUs started).
    public var workerStartMilliseconds: Double?
    /// Heartbeat as the guest's integration service reports it: unknown, healthy, not-responding.
    public var heartbeat: String?
    public var guestOS: String?
    public var lastExit: ExitInfo?
    /// Why the entry is corrupt, or the last start failure.
    public var error: String?

    public init(id: String, name: String, state: VMState, spec: VMSpec?) {
        self.id = id
        self.name = name
        self.state = state
        self.spec = spec
    }
}

/// One entry of a VM's event log.
public struct VMEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case created, state, heartbeat, guest, crash, error
    }

    public var time: String
    public var kind: Kind
    public var message: String
    /// The state after the event, for state changes.
    public var state: VMState?

    public init(time: String, kind: Kind, message: String, state: VMState? = nil) {
        self.time = time
        self.kind = kind
        self.message = message
        self.state = state
    }
}

/// `GET /v1` : what the service is.
public struct ServiceInfo: Codable, Sendable, Equatable {
    public var service: String
    public var apiVersion: String
    public var pid: Int32
    public var stateDirectory: String
    public var vmCount: Int

    public init(service: String = "keeld", apiVersion: String = "v1", pid: Int32, stateDirectory: String, vmCount: Int) {
        self.service = service
        self.apiVersion = apiVersion
        self.pid = pid
        self.stateDirectory = stateDirectory
        self.vmCount = vmCount
    }
}

/// Timestamps in the API and the state files: ISO 8601 UTC with milliseconds.
public enum Timestamp {
    public static func string(_ date: Date = Date()) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// JSON as keeld writes it: sorted keys (stable files and diffs).
public enum JSON {
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain value types cannot fail.
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
