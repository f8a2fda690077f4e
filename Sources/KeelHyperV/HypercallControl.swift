/// Registers at a hypercall exit (design §3.1). Slow calls: RDX = input GPA, R8 = output GPA;
/// fast calls: RDX and R8 carry the first 16 bytes of input.
public struct HypercallRegisters: Sendable, Equatable {
    public var rcx: UInt64
    public var rdx: UInt64
    public var r8: UInt64
    /// Current privilege level of the caller (CS.RPL); hypercalls from CPL > 0 are refused.
    public var cpl: UInt8

    public init(rcx: UInt64, rdx: UInt64 = 0, r8: UInt64 = 0, cpl: UInt8 = 0) {
        self.rcx = rcx
        self.rdx = rdx
        self.r8 = r8
        self.cpl = cpl
    }
}

/// The decoded hypercall control word (RCX, design §3.2).
public struct HypercallControl: Sendable, Equatable {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Bits 15:0.
    public var callCode: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    /// Bit 16: register (fast) call.
    public var isFast: Bool { rawValue & (1 << 16) != 0 }
    /// Bits 26:17, in 8-byte units.
    public var variableHeaderSize: Int { Int((rawValue >> 17) & 0x3FF) }
    /// Bit 31: meant for the L0 hypervisor (only nested guests set it).
    public var isNested: Bool { rawValue & (1 << 31) != 0 }
    /// Bits 43:32.
    public var repCount: Int { Int((rawValue >> 32) & 0xFFF) }
    /// Bits 59:48.
    public var repStartIndex: Int { Int((rawValue >> 48) & 0xFFF) }
    /// Bits 30:27, 47:44 and 63:60 must be zero.
    public var hasReservedBitsSet: Bool { rawValue & Self.reservedMask != 0 }

    static let reservedMask: UInt64 = (0xF << 27) | (0xF << 44) | (0xF << 60)
}

/// A hypercall's result: the value for RAX (status in bits 15:0, reps completed in 43:32).
public struct HypercallResult: Sendable, Equatable {
    public var status: HvStatus
    public var repsCompleted: Int

    public init(status: HvStatus, repsCompleted: Int = 0) {
        self.status = status
        self.repsCompleted = repsCompleted
    }

    public var rax: UInt64 {
        UInt64(status.rawValue) | (UInt64(truncatingIfNeeded: repsCompleted) & 0xFFF) << 32
    }
}

/// Hypercall codes implemented here.
public enum HypercallCode {
    public static let postMessage: UInt16 = 0x005C
    public static let signalEvent: UInt16 = 0x005D
}
