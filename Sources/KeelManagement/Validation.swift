/// What validation needs to know about host files; keeld answers from the file system, unit
/// tests from a table.
public struct FileFacts: Sendable {
    public enum Kind: Sendable, Equatable { case missing, directory, file }
    public var kind: @Sendable (String) -> Kind
    public var readable: @Sendable (String) -> Bool
    public var writable: @Sendable (String) -> Bool
    public var size: @Sendable (String) -> UInt64?

    public init(kind: @escaping @Sendable (String) -> Kind, readable: @escaping @Sendable (String) -> Bool,
                writable: @escaping @Sendable (String) -> Bool, size: @escaping @Sendable (String) -> UInt64?) {
        self.kind = kind
        self.readable = readable
        self.writable = writable
        self.size = size
    }
}

/// Checks every input of the management API: names, paths, sizes and counts. Limits match what
/// `keel-worker` accepts, so a VM that passes here does not fail later on its configuration.
public enum Validation {
    public static let minimumMemoryMiB = 64
    public static let maximumMemoryMiB = 1 << 20  // 1 TiB
    public static let maximumCPUs = 64
    public static let maximumDisks = 64
    public static let maximumNetworks = 8
    public static let maximumCommandLineBytes = 4095
    public static let maximumPathBytes = 4096
    public static let maximumShutdownTimeoutSeconds = 86_400
    public static let maximumNameLength = 63
    public static let minimumDiskBytes: UInt64 = 512
    /// Largest request body keeld reads.
    public static let maximumBodyBytes = 1 << 20

    /// A VM name: 1 to 63 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit (so it is a safe
    /// file name and needs no quoting in URLs or shells).
    public static func checkName(_ name: String) throws(APIError) {
        guard !name.isEmpty else { throw APIError(.invalidArgument, "name: must not be empty") }
        guard name.utf8.count <= maximumNameLength else {
            throw APIError(.invalidArgument, "name '\(name.prefix(80))': longer than \(maximumNameLength) characters")
        }
        let allowed = { (b: UInt8) in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
        guard name.utf8.allSatisfy(allowed), let first = name.utf8.first,
              first != UInt8(ascii: "."), first != UInt8(ascii: "_"), first != UInt8(ascii: "-") else {
            throw APIError(.invalidArgument,
                           "name '\(name.prefix(80))': use letters, digits, '.', '_' and '-', starting with a letter or digit")
        }
    }

    /// Checks a create request completely; the first problem is thrown.
    public static func check(_ spec: VMSpec, files: FileFacts) throws(APIError) {
        try checkName(spec.name)
        guard (minimumMemoryMiB...maximumMemoryMiB).contains(spec.memoryMiB) else {
            throw APIError(.invalidArgument, "memoryMiB \(spec.memoryMiB): must be between \(minimumMemoryMiB) and \(maximumMemoryMiB)")
        }
        guard (1...maximumCPUs).contains(spec.cpus) else {
            throw APIError(.invalidArgument, "cpus \(spec.cpus): must be between 1 and \(maximumCPUs)")
        }
        guard (0...maximumShutdownTimeoutSeconds).contains(spec.shutdownTimeoutSeconds) else {
            throw APIError(.invalidArgument,
                           "shutdownTimeoutSeconds \(spec.shutdownTimeoutSeconds): must be between 0 and \(maximumShutdownTimeoutSeconds)")
        }
        guard !spec.commandLine.utf8.contains(0) else { throw APIError(.invalidArgument, "commandLine: contains a NUL byte") }
        guard spec.commandLine.utf8.count <= maximumCommandLineBytes else {
            throw APIError(.invalidArgument, "commandLine: \(spec.commandLine.utf8.count) bytes, the limit is \(maximumCommandLineBytes)")
        }
        try checkNetworks(spec.networks)
        try checkReadableFile(spec.kernel, field: "kernel", files: files)
        if let initrd = spec.initrd { try checkReadableFile(initrd, field: "initrd", files: files) }
        guard spec.disks.count <= maximumDisks else {
            throw APIError(.invalidArgument, "disks: \(spec.disks.count) disks, at most \(maximumDisks)")
        }
        var seen = Set<String>()
        for disk in spec.disks {
            try checkPath(disk.path, field: "disk")
            guard seen.insert(disk.path).inserted else { throw APIError(.invalidArgument, "disk \(disk.path): given twice") }
            switch files.kind(disk.path) {
            case .missing: throw APIError(.invalidArgument, "disk \(disk.path): no such file")
            case .directory: throw APIError(.invalidArgument, "disk \(disk.path): is a directory")
            case .file: break
            }
            guard files.readable(disk.path), disk.readOnly || files.writable(disk.path) else {
                throw APIError(.invalidArgument,
                               "disk \(disk.path): not \(disk.readOnly ? "readable" : "readable and writable (add readOnly?)")")
            }
            guard let size = files.size(disk.path), size >= minimumDiskBytes else {
                throw APIError(.invalidArgument, "disk \(disk.path): empty or smaller than \(minimumDiskBytes) bytes")
            }
        }
    }

    /// Paths must be absolute (keeld and its workers do not share the client's directory).
    /// Network adapters: at most 8, TAP names as Linux allows them, each TAP once, MACs unicast.
    static func checkNetworks(_ networks: [NetworkSpec]) throws(APIError) {
        guard networks.count <= maximumNetworks else {
            throw APIError(.invalidArgument, "networks: \(networks.count) adapters, at most \(maximumNetworks)")
        }
        var taps = Set<String>()
        var macs = Set<String>()
        for network in networks {
            let tap = network.tap
            guard (1...15).contains(tap.utf8.count), !tap.contains("/"), !tap.contains(where: \.isWhitespace),
                  tap != ".", tap != ".." else {
                throw APIError(.invalidArgument, "network tap '\(tap)': must be 1 to 15 characters, no '/' or spaces")
            }
            guard taps.insert(tap).inserted else { throw APIError(.invalidArgument, "network tap \(tap): given twice") }
            guard let mac = network.mac else { continue }
            let octets = mac.split(separator: ":", omittingEmptySubsequences: false)
                .compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
            guard octets.count == 6 else {
                throw APIError(.invalidArgument, "network mac '\(mac)': must look like 00:15:5d:01:02:03")
            }
            guard octets[0] & 1 == 0, octets != [0, 0, 0, 0, 0, 0] else {
                throw APIError(.invalidArgument, "network mac \(mac): must be a unicast, non-zero address")
            }
            guard macs.insert(mac.lowercased()).inserted else { throw APIError(.invalidArgument, "network mac \(mac): given twice") }
        }
    }

    public static func checkPath(_ path: String, field: String) throws(APIError) {
        guard !path.isEmpty else { throw APIError(.invalidArgument, "\(field): empty path") }
        guard !path.utf8.contains(0) else { throw APIError(.invalidArgument, "\(field): path contains a NUL byte") }
        guard path.utf8.count <= maximumPathBytes else { throw APIError(.invalidArgument, "\(field): path longer than \(maximumPathBytes) bytes") }
        guard path.hasPrefix("/") else { throw APIError(.invalidArgument, "\(field) \(path): must be an absolute path") }
    }

    static func checkReadableFile(_ path: String, field: String, files: FileFacts) throws(APIError) {
        try checkPath(path, field: field)
        switch files.kind(path) {
        case .missing: throw APIError(.invalidArgument, "\(field) \(path): no such file")
        case .directory: throw APIError(.invalidArgument, "\(field) \(path): is a directory")
        case .file: break
        }
        guard files.readable(path) else { throw APIError(.invalidArgument, "\(field) \(path): not readable") }
    }
}
