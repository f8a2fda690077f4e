/// One CPUID leaf as plain values, ready for `KVM_SET_CPUID2`.
public struct HyperVCPUIDLeaf: Sendable, Equatable {
    public var function: UInt32
    public var index: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, eax: UInt32, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function
        self.index = index
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }
}

/// The Hyper-V hypervisor CPUID leaves 0x40000000–0x4000000A for a configuration.
///
/// What the VM must also do to the rest of CPUID (not produced here):
/// - leaf 1 ECX bit 31 (hypervisor present) set;
/// - every KVM paravirt leaf removed ("KVMKVMKVM" must not appear anywhere in
///   0x40000000–0x4000FF00, or Linux picks KVM and never initialises Hyper-V); these leaves
///   replace KVM's 0x40000000/0x40000001;
/// - with `invariantTSC`, leaf 0x80000007 EDX bit 8 (invariant TSC) set;
/// - the final CPUID set before the first `KVM_RUN`.
public struct HyperVCPUID: Sendable, Equatable {
    /// Highest hypervisor leaf reported in 0x40000000 EAX.
    public static let maxLeaf: UInt32 = 0x4000_000A

    /// Partition privilege bits (0x40000003 EAX).
    public enum Privilege {
        public static let accessPartitionReferenceCounter: UInt32 = 1 << 1
        public static let accessSynICRegisters: UInt32 = 1 << 2
        public static let accessHypercallMSRs: UInt32 = 1 << 5
        public static let accessVPIndex: UInt32 = 1 << 6
        public static let accessPartitionReferenceTSC: UInt32 = 1 << 9
        public static let accessFrequencyMSRs: UInt32 = 1 << 11
        public static let accessTSCInvariantControls: UInt32 = 1 << 15
        /// 0x40000003 EBX (privileges high).
        public static let postMessages: UInt32 = 1 << 4
        public static let signalEvents: UInt32 = 1 << 5
    }

    /// Misc feature bits (0x40000003 EDX).
    public enum Feature {
        public static let frequencyMSRsAvailable: UInt32 = 1 << 8
        public static let guestCrashMSRsAvailable: UInt32 = 1 << 10
    }

    /// Recommendation bits (0x40000004 EAX).
    public enum Hint {
        public static let relaxedTiming: UInt32 = 1 << 5
        public static let deprecateAutoEOI: UInt32 = 1 << 9
    }

    public let leaves: [HyperVCPUIDLeaf]

    public init(_ configuration: HyperVConfiguration) {
        var privileges = Privilege.accessPartitionReferenceCounter | Privilege.accessSynICRegisters
            | Privilege.accessHypercallMSRs | Privilege.accessVPIndex
        var features: UInt32 = 0
        if configuration.offersTSCPage {
            privileges |= Privilege.accessPartitionReferenceTSC | Privilege.accessFrequencyMSRs
            features |= Feature.frequencyMSRsAvailable
        }
        if configuration.invariantTSC { privileges |= Privilege.accessTSCInvariantControls }
        if configuration.crashMSRs { features |= Feature.guestCrashMSRsAvailable }
        let vps = UInt32(clamping: configuration.vpCount)
        let lps = UInt32(clamping: configuration.hostLogicalProcessors)
        leaves = [
            // "Microsoft Hv"
            HyperVCPUIDLeaf(function: 0x4000_0000, eax: Self.maxLeaf, ebx: 0x7263_694D, ecx: 0x666F_736F, edx: 0x7648_2074),
            // "Hv#1"
            HyperVCPUIDLeaf(function: 0x4000_0001, eax: 0x3123_7648),
            // Build 10.0.20348.
            HyperVCPUIDLeaf(function: 0x4000_0002, eax: 20348, ebx: 0x000A_0000),
            // Never CpuManagement (EBX 12), AccessPartitionId (EBX 1) or Isolation (EBX 22).
            HyperVCPUIDLeaf(function: 0x4000_0003, eax: privileges,
                            ebx: Privilege.postMessages | Privilege.signalEvents, edx: features),
            // Never the nested hint (bit 12). Spin-lock retries: never notify.
            HyperVCPUIDLeaf(function: 0x4000_0004, eax: Hint.relaxedTiming | Hint.deprecateAutoEOI, ebx: 0xFFFF_FFFF),
            HyperVCPUIDLeaf(function: 0x4000_0005, eax: vps, ebx: lps),
        ] + (0x4000_0006...Self.maxLeaf).map { HyperVCPUIDLeaf(function: $0, eax: 0) }
    }

    /// The leaf for `function`, if this set defines it.
    public func leaf(_ function: UInt32) -> HyperVCPUIDLeaf? {
        leaves.first { $0.function == function }
    }
}
