/// Synthetic MSR numbers (TLFS, x64, non-nested).
public enum HyperVMSR {
    public static let guestOSID: UInt32 = 0x4000_0000
    public static let hypercall: UInt32 = 0x4000_0001
    public static let vpIndex: UInt32 = 0x4000_0002
    public static let timeRefCount: UInt32 = 0x4000_0020
    public static let referenceTSC: UInt32 = 0x4000_0021
    public static let tscFrequency: UInt32 = 0x4000_0022
    public static let apicFrequency: UInt32 = 0x4000_0023
    public static let vpAssistPage: UInt32 = 0x4000_0073
    public static let scontrol: UInt32 = 0x4000_0080
    public static let sversion: UInt32 = 0x4000_0081
    public static let siefp: UInt32 = 0x4000_0082
    public static let simp: UInt32 = 0x4000_0083
    public static let eom: UInt32 = 0x4000_0084
    public static let sint0: UInt32 = 0x4000_0090
    public static let sint15: UInt32 = 0x4000_009F
    public static let crashP0: UInt32 = 0x4000_0100
    public static let crashP4: UInt32 = 0x4000_0104
    public static let crashControl: UInt32 = 0x4000_0105
    public static let tscInvariantControl: UInt32 = 0x4000_0118

    /// The range the VM should route to user space with `KVM_X86_SET_MSR_FILTER` (deny → exit).
    public static let filteredRange: ClosedRange<UInt32> = 0x4000_0000...0x4000_01FF

    /// The SINT number for a SINTx MSR, or nil.
    public static func sintNumber(_ msr: UInt32) -> Int? {
        (sint0...sint15).contains(msr) ? Int(msr - sint0) : nil
    }
}
