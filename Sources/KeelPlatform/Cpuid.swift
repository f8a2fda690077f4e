/// One CPUID leaf/subleaf as KVM's `kvm_cpuid_entry2` carries it.
public struct CpuidEntry: Sendable, Equatable, Hashable {
    public var function: UInt32
    public var index: UInt32
    /// KVM_CPUID_FLAG_* bits (1 = the index is significant).
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public static let significantIndex: UInt32 = 1

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0,
                eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }
}

/// Why a vCPU's CPUID table could not be built.
public enum CpuidError: Error, CustomStringConvertible, Equatable {
    case invalidVCPUCount(Int)
    case invalidVCPUIndex(index: Int, count: Int)
    case leafOutsideHypervisorRange(UInt32)
    case duplicateLeaf(function: UInt32, index: UInt32)

    public var description: String {
        switch self {
        case let .invalidVCPUCount(n): "CPUID: vCPU count \(n) is outside 1…255"
        case let .invalidVCPUIndex(i, n): "CPUID: vCPU index \(i) is outside 0..<\(n)"
        case let .leafOutsideHypervisorRange(f): "CPUID: hypervisor leaf \(hex(f)) is outside 0x40000000…0x4FFFFFFF"
        case let .duplicateLeaf(f, i): "CPUID: hypervisor leaf \(hex(f)) subleaf \(i) given twice"
        }
    }
}

/// Builds each vCPU's CPUID table from what KVM supports. Topology: every vCPU is one core
/// (one thread) of a single package, APIC id = vCPU index. Leaves 6 (KVM exposes only ARAT)
/// and 0xA (the vPMU KVM offers) are passed through unchanged: guests handle both.
public enum Cpuid {
    public static let hypervisorRange: ClosedRange<UInt32> = 0x4000_0000...0x4FFF_FFFF

    /// Leaf 0x40000000 announcing "KeelKeelKeel", max hypervisor leaf 0x40000000: a placeholder
    /// until the Hyper-V leaves exist.
    public static let keelSignatureLeaves: [CpuidEntry] = {
        let keel: UInt32 = 0x6C65_654B  // "Keel" little-endian
        return [CpuidEntry(function: 0x4000_0000, eax: 0x4000_0000, ebx: keel, ecx: keel, edx: keel)]
    }()

    /// Bits of the APIC id that number cores within the package: ceil(log2(count)).
    public static func coreIDWidth(vcpuCount: Int) -> Int {
        var width = 0
        while (1 << width) < vcpuCount { width += 1 }
        return width
    }

    /// The table for vCPU `vcpuIndex` of `vcpuCount`: host entries without any
    /// 0x40000000–0x4FFFFFFF leaf, plus `hypervisorLeaves`, with leaves 1, 4, 0xB and 0x1F
    /// rewritten for the topology above. Sorted by (function, index).
    public static func vcpuTable(hostSupported: [CpuidEntry], vcpuIndex: Int, vcpuCount: Int,
                                 hypervisorLeaves: [CpuidEntry]) throws(CpuidError) -> [CpuidEntry] {
        guard (1...255).contains(vcpuCount) else { throw .invalidVCPUCount(vcpuCount) }
        guard (0..<vcpuCount).contains(vcpuIndex) else { throw .invalidVCPUIndex(index: vcpuIndex, count: vcpuCount) }
        var seen = Set<[UInt32]>()
        for leaf in hypervisorLeaves {
            guard hypervisorRange.contains(leaf.function) else { throw .leafOutsideHypervisorRange(leaf.function) }
            guard seen.insert([leaf.function, leaf.index]).inserted else {
                throw .duplicateLeaf(function: leaf.function, index: leaf.index)
            }
        }
        let apicID = UInt32(vcpuIndex)
        let width = UInt32(coreIDWidth(vcpuCount: vcpuCount))
        var table: [CpuidEntry] = []
        for var e in hostSupported where !hypervisorRange.contains(e.function) {
            switch e.function {
            case 0x1:
                e.ecx |= 1 << 31  // hypervisor present
                e.ebx = (e.ebx & 0x0000_FFFF) | apicID << 24 | UInt32(vcpuCount) << 16
                if vcpuCount > 1 { e.edx |= 1 << 28 } else { e.edx &= ~(1 << 28) }  // HTT
            case 0x4:
                e.eax = leaf4EAX(e.eax, coreIDWidth: width)
            case 0xB, 0x1F:
                continue  // regenerated below
            default:
                break
            }
            table.append(e)
        }
        for function: UInt32 in [0xB, 0x1F] where hostSupported.contains(where: { $0.function == function }) {
            table += extendedTopology(function: function, apicID: apicID, coreIDWidth: width, vcpuCount: vcpuCount)
        }
        table += hypervisorLeaves
        return table.sorted { ($0.function, $0.index) < ($1.function, $1.index) }
    }

    /// Leaf 4 (deterministic cache parameters): EAX[31:26] = addressable core ids − 1; EAX[25:14]
    /// = logical processors sharing the cache − 1 (one for L1/L2, the package for L3 and up).
    static func leaf4EAX(_ eax: UInt32, coreIDWidth width: UInt32) -> UInt32 {
        guard eax & 0x1F != 0 else { return eax }  // cache type 0: no more caches
        let level = (eax >> 5) & 0x7
        let sharing: UInt32 = level >= 3 ? (1 << width) - 1 : 0
        return (eax & 0x3FFF) | (sharing & 0xFFF) << 14 | (((1 << width) - 1) & 0x3F) << 26
    }

    /// Leaves 0xB/0x1F: subleaf 0 = SMT level (1 thread per core), subleaf 1 = core level
    /// (`vcpuCount` cores, APIC id shift `coreIDWidth`), subleaf 2 = invalid level ending the list.
    /// EDX = x2APIC id in every subleaf.
    static func extendedTopology(function: UInt32, apicID: UInt32, coreIDWidth width: UInt32,
                                 vcpuCount: Int) -> [CpuidEntry] {
        let flags = CpuidEntry.significantIndex
        return [
            CpuidEntry(function: function, index: 0, flags: flags, eax: 0, ebx: 1, ecx: 1 << 8 | 0, edx: apicID),
            CpuidEntry(function: function, index: 1, flags: flags, eax: width, ebx: UInt32(vcpuCount),
                       ecx: 2 << 8 | 1, edx: apicID),
            CpuidEntry(function: function, index: 2, flags: flags, eax: 0, ebx: 0, ecx: 2, edx: apicID),
        ]
    }
}
