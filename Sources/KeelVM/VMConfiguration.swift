import KeelPlatform
import KeelSystem

/// What a user asks for when starting a VM. Validated before anything is created, so bad input
/// gets one clear message and leaves nothing behind.
public struct VMConfiguration: Sendable, Equatable {
    public var kernelPath: String
    public var initrdPath: String?
    public var commandLine: String
    public var memoryMiB: Int
    public var cpus: Int
    /// Seconds added to the host's time in the guest's real-time clock (CMOS), like QEMU's
    /// `-rtc base=`: a guest can start with a wrong clock that time sync must correct.
    public var rtcOffsetSeconds: Int64 = 0
    /// Raw disk images on the synthetic SCSI controller, LUN 0, 1, … in this order.
    public var disks: [DiskConfiguration] = []
    /// Synthetic network adapters, each bridged to a host TAP interface.
    public var networks: [NetworkConfiguration] = []
    /// Host CPU features the guest does not see (`--cpu-features -erms,...`).
    public var hiddenCPUFeatures: [CPUFeature] = []

    public static let maximumCPUs = 64
    /// LUNs Keel puts on its SCSI controller (Hyper-V allows 64 per controller).
    public static let maximumDisks = 64
    /// Network adapters per VM (Hyper-V allows 8 synthetic adapters).
    public static let maximumNetworks = 8
    /// Largest RTC offset accepted: about a century either way.
    public static let maximumRTCOffsetSeconds: Int64 = 100 * 366 * 86_400

    public init(kernelPath: String, initrdPath: String? = nil, commandLine: String = "console=ttyS0",
                memoryMiB: Int = 512, cpus: Int = 1) {
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.commandLine = commandLine
        self.memoryMiB = memoryMiB
        self.cpus = cpus
    }

    public var memoryBytes: UInt64 { UInt64(max(0, memoryMiB)) << 20 }

    /// Checks sizes, counts and files; the error names the offending option.
    public func validate() throws(ConfigurationError) {
        let minMiB = Int(GuestMemoryLayout.minimumRAMSize >> 20)
        let maxMiB = Int(GuestMemoryLayout.maximumRAMSize >> 20)
        guard (minMiB...maxMiB).contains(memoryMiB) else {
            throw ConfigurationError("--memory \(memoryMiB): must be between \(minMiB) and \(maxMiB) MiB")
        }
        let physicalMiB = Int(Host.physicalMemory >> 20)
        guard memoryMiB <= physicalMiB else {
            throw ConfigurationError("--memory \(memoryMiB): more than this host's \(physicalMiB) MiB of RAM")
        }
        guard (1...Self.maximumCPUs).contains(cpus) else {
            throw ConfigurationError("--cpus \(cpus): must be between 1 and \(Self.maximumCPUs)")
        }
        guard abs(rtcOffsetSeconds) <= Self.maximumRTCOffsetSeconds else {
            throw ConfigurationError("--rtc-offset \(rtcOffsetSeconds): must be within ±\(Self.maximumRTCOffsetSeconds) seconds")
        }
        try Self.checkReadableFile(kernelPath, option: "--kernel")
        guard disks.count <= Self.maximumDisks else {
            throw ConfigurationError("--disk: \(disks.count) disks, at most \(Self.maximumDisks)")
        }
        for disk in disks { try disk.validate() }
        guard networks.count <= Self.maximumNetworks else {
            throw ConfigurationError("--net: \(networks.count) adapters, at most \(Self.maximumNetworks)")
        }
        if let tap = Dictionary(grouping: networks, by: \.tap).first(where: { $0.value.count > 1 })?.key {
            throw ConfigurationError("--net tap=\(tap): given twice")
        }
        let macs = networks.enumerated().map { $0.element.resolvedMAC(index: $0.offset) }
        if Set(macs).count != macs.count { throw ConfigurationError("--net: two adapters have the same MAC address") }
        if let duplicate = Dictionary(grouping: disks, by: \.path).first(where: { $0.value.count > 1 })?.key {
            throw ConfigurationError("--disk \(duplicate): given twice")
        }
        if let initrdPath { try Self.checkReadableFile(initrdPath, option: "--initrd") }
        guard !commandLine.utf8.contains(0) else {
            throw ConfigurationError("--cmdline: contains a NUL byte")
        }
        guard commandLine.utf8.count < BootLayout.commandLineMaxSize else {
            throw ConfigurationError("--cmdline: \(commandLine.utf8.count) bytes, the limit is \(BootLayout.commandLineMaxSize - 1)")
        }
    }

    static func checkReadableFile(_ path: String, option: String) throws(ConfigurationError) {
        switch Host.fileKind(path) {
        case .missing: throw ConfigurationError("\(option) \(path): no such file")
        case .directory: throw ConfigurationError("\(option) \(path): is a directory")
        case .other: break
        }
        guard Host.isReadable(path) else { throw ConfigurationError("\(option) \(path): not readable") }
    }
}

/// A raw disk image given to the VM (`--disk PATH[,readonly]`).
public struct DiskConfiguration: Sendable, Equatable {
    public var path: String
    public var readOnly: Bool
    /// The synthetic SCSI controller (0–3, as Hyper-V's four); LUNs count up per controller.
    public var controller: Int

    public init(path: String, readOnly: Bool = false, controller: Int = 0) {
        self.path = path
        self.readOnly = readOnly
        self.controller = controller
    }

    /// SCSI controllers a VM can have (Hyper-V: 4).
    public static let maximumControllers = 4

    /// Smallest image accepted: one 512-byte sector.
    public static let minimumSize: UInt64 = 512

    /// Parses `PATH[,readonly][,controller=N]` (also `ro`, and `rw`).
    public static func parse(_ text: String) throws(ConfigurationError) -> DiskConfiguration {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let path = parts.removeFirst()
        guard !path.isEmpty else { throw ConfigurationError("--disk \(text): missing the image path") }
        var disk = DiskConfiguration(path: path)
        for option in parts {
            switch option {
            case "readonly", "ro": disk.readOnly = true
            case "rw": disk.readOnly = false
            case _ where option.hasPrefix("controller="):
                guard let n = Int(option.dropFirst("controller=".count)), (0..<maximumControllers).contains(n) else {
                    throw ConfigurationError("--disk \(text): controller must be 0 to \(maximumControllers - 1)")
                }
                disk.controller = n
            default:
                throw ConfigurationError("--disk \(text): unknown option '\(option)' (use PATH[,readonly][,controller=N])")
            }
        }
        return disk
    }

    func validate() throws(ConfigurationError) {
        switch Host.fileKind(path) {
        case .missing: throw ConfigurationError("--disk \(path): no such file")
        case .directory: throw ConfigurationError("--disk \(path): is a directory")
        case .other: break
        }
        guard Host.isReadable(path), readOnly || Host.isWritable(path) else {
            throw ConfigurationError("--disk \(path): not \(readOnly ? "readable" : "readable and writable (add ,readonly?)")")
        }
        guard let size = Host.fileSize(path), size >= Self.minimumSize else {
            throw ConfigurationError("--disk \(path): empty or smaller than \(Self.minimumSize) bytes")
        }
    }
}

/// A synthetic network adapter bridged to a host TAP (`--net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]`).
public struct NetworkConfiguration: Sendable, Equatable {
    public var tap: String
    public var mac: [UInt8]?

    public init(tap: String, mac: [UInt8]? = nil) {
        self.tap = tap
        self.mac = mac
    }

    /// The MAC the guest sees: the configured one, or a stable one in Hyper-V's range
    /// (00:15:5D) derived from the TAP name and the adapter's position.
    public func resolvedMAC(index: Int) -> [UInt8] {
        if let mac { return mac }
        var hash: UInt32 = 2_166_136_261   // FNV-1a
        for byte in Array(tap.utf8) + [UInt8(truncatingIfNeeded: index)] { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return [0x00, 0x15, 0x5D, UInt8(truncatingIfNeeded: hash >> 16), UInt8(truncatingIfNeeded: hash >> 8),
                UInt8(truncatingIfNeeded: hash)]
    }

    /// Parses `tap=NAME[,mac=XX:XX:XX:XX:XX:XX]`.
    public static func parse(_ text: String) throws(ConfigurationError) -> NetworkConfiguration {
        var tap: String?
        var mac: [UInt8]?
        for option in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ConfigurationError("--net \(text): expected key=value, got '\(option)'") }
            switch parts[0] {
            case "tap":
                guard !parts[1].isEmpty, parts[1].utf8.count < 16, !parts[1].contains("/") else {
                    throw ConfigurationError("--net \(text): TAP name must be 1 to 15 characters without '/'")
                }
                tap = parts[1]
            case "mac":
                mac = try parseMAC(parts[1], in: text)
            default:
                throw ConfigurationError("--net \(text): unknown option '\(parts[0])' (use tap=NAME[,mac=...])")
            }
        }
        guard let tap else { throw ConfigurationError("--net \(text): missing tap=NAME") }
        return NetworkConfiguration(tap: tap, mac: mac)
    }

    static func parseMAC(_ text: String, in option: String) throws(ConfigurationError) -> [UInt8] {
        let octets = text.split(separator: ":", omittingEmptySubsequences: false).compactMap { part in
            part.count == 2 ? UInt8(part, radix: 16) : nil
        }
        guard octets.count == 6 else { throw ConfigurationError("--net \(option): MAC must look like 00:15:5d:01:02:03") }
        guard octets[0] & 1 == 0 else { throw ConfigurationError("--net \(option): \(text) is a multicast address") }
        guard octets != [0, 0, 0, 0, 0, 0] else { throw ConfigurationError("--net \(option): the MAC cannot be all zeros") }
        return octets
    }
}

/// Invalid user input (options, files). `keel run` prints it on one line and exits with status 2.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
