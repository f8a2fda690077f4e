/// A host CPU feature the user can hide from the guest (`--cpu-features -erms,-fsrm`), as
/// QEMU's `-cpu host,-erms` does: to give guests the same model on different hosts, to work
/// around a guest that misbehaves with a feature, or to compare VMMs on equal CPU models.
/// Only hiding is offered: a feature KVM does not support cannot be made to work by
/// announcing it.
public struct CPUFeature: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Register: Sendable, Equatable, Hashable { case ebx, ecx, edx }

    /// The name QEMU and Linux's /proc/cpuinfo use.
    public let name: String
    public let function: UInt32
    public let index: UInt32
    public let register: Register
    public let bit: Int

    public var description: String { name }

    /// The features that can be hidden, by the name /proc/cpuinfo shows.
    public static let known: [CPUFeature] = [
        CPUFeature(name: "erms", function: 7, index: 0, register: .ebx, bit: 9),
        CPUFeature(name: "fsrm", function: 7, index: 0, register: .edx, bit: 4),
        CPUFeature(name: "avx", function: 1, index: 0, register: .ecx, bit: 28),
        CPUFeature(name: "avx2", function: 7, index: 0, register: .ebx, bit: 5),
        CPUFeature(name: "avx512f", function: 7, index: 0, register: .ebx, bit: 16),
        CPUFeature(name: "rdrand", function: 1, index: 0, register: .ecx, bit: 30),
        CPUFeature(name: "rdseed", function: 7, index: 0, register: .ebx, bit: 18),
        CPUFeature(name: "pdpe1gb", function: 0x8000_0001, index: 0, register: .edx, bit: 26),
    ]

    /// Parses a comma-separated list of `-NAME` items (`-erms,-fsrm`).
    public static func parseHidden(_ text: String) throws(CPUFeatureError) -> [CPUFeature] {
        var hidden: [CPUFeature] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard item.first == "-" else {
                throw CPUFeatureError("'\(item)': only hiding host features is supported; write -NAME")
            }
            let name = item.dropFirst().lowercased()
            guard let feature = known.first(where: { $0.name == name }) else {
                throw CPUFeatureError("'\(name)': unknown feature (known: \(known.map(\.name).joined(separator: ", ")))")
            }
            if !hidden.contains(feature) { hidden.append(feature) }
        }
        return hidden
    }

    /// `entries` with this feature's bit cleared (in the leaf and subleaf that carries it).
    public func hidden(in entries: [CpuidEntry]) -> [CpuidEntry] {
        entries.map { entry in
            guard entry.function == function, entry.index == index else { return entry }
            var entry = entry
            let mask = ~(UInt32(1) << UInt32(bit))
            switch register {
            case .ebx: entry.ebx &= mask
            case .ecx: entry.ecx &= mask
            case .edx: entry.edx &= mask
            }
            return entry
        }
    }
}

/// Why a `--cpu-features` list was refused.
public struct CPUFeatureError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
