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

    public static let maximumCPUs = 64
    /// LUNs Keel puts on its SCSI controller (Hyper-V allows 64 per controller).
    public static let maximumDisks = 64
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

    public init(path: String, readOnly: Bool = false) {
        self.path = path
        self.readOnly = readOnly
    }

    /// Smallest image accepted: one 512-byte sector.
    public static let minimumSize: UInt64 = 512

    /// Parses `PATH[,readonly]` (also `ro`, and `rw`).
    public static func parse(_ text: String) throws(ConfigurationError) -> DiskConfiguration {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let path = parts.removeFirst()
        guard !path.isEmpty else { throw ConfigurationError("--disk \(text): missing the image path") }
        var disk = DiskConfiguration(path: path)
        for option in parts {
            switch option {
            case "readonly", "ro": disk.readOnly = true
            case "rw": disk.readOnly = false
            default: throw ConfigurationError("--disk \(text): unknown option '\(option)' (use PATH[,readonly])")
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

/// Invalid user input (options, files). `keel run` prints it on one line and exits with status 2.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
