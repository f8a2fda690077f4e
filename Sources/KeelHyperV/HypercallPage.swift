/// The code the host writes into the guest's hypercall page (design §3.8): port I/O instead of
/// VMCALL, starting with ENDBR64 for IBT kernels. Only RAX and flags are modified.
public struct HypercallPage: Sendable, Equatable {
    public static let size = 4096
    /// The control word of a fast HvSignalEvent, matched by the fast path.
    public static let fastSignalEventControl: UInt32 = 0x0001_005D

    /// Generic path port: `out hc, eax` → `KVM_EXIT_IO`; the VM runs the hypercall and sets RAX.
    public var hypercallPort: UInt8
    /// Fast path port for HvSignalEvent (`out se, eax` with EAX = connection id, then RAX = 0),
    /// meant for a PIO ioeventfd with datamatch = connection id. Nil: minimal page.
    public var signalEventPort: UInt8?

    public init(hypercallPort: UInt8, signalEventPort: UInt8? = nil) {
        self.hypercallPort = hypercallPort
        self.signalEventPort = signalEventPort
    }

    /// The machine code without padding.
    public var code: [UInt8] {
        let endbr64: [UInt8] = [0xF3, 0x0F, 0x1E, 0xFA]
        let generic: [UInt8] = [0xE7, hypercallPort, 0xC3]          // out hc, eax; ret
        guard let se = signalEventPort else { return endbr64 + generic }
        let c = Self.fastSignalEventControl
        let fast: [UInt8] = [
            0x48, 0x81, 0xF9,                                         // cmp rcx, imm32 (sign-extended)
            UInt8(c & 0xFF), UInt8((c >> 8) & 0xFF), UInt8((c >> 16) & 0xFF), UInt8(c >> 24),
            0x75, 0x07,                                               // jne generic (+7)
            0x89, 0xD0,                                               // mov eax, edx
            0xE7, se,                                                 // out se, eax
            0x31, 0xC0,                                               // xor eax, eax
            0xC3,                                                     // ret
        ]
        return endbr64 + fast + generic
    }

    /// The full page: code followed by INT3 padding.
    public var bytes: [UInt8] {
        let code = self.code
        return code + [UInt8](repeating: 0xCC, count: Self.size - code.count)
    }
}
