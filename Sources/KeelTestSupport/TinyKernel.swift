/// A minimal bzImage whose 64-bit entry runs a few hand-written instructions. It goes through
/// Keel's real boot path (bzImage parsing, zero page, page tables, long-mode entry, devices) in
/// milliseconds, so `keel run` can be tested directly on this machine's software KVM, which
/// cannot boot a real Linux kernel.
public enum TinyKernel {
    /// Writes SLP_TYP=5|SLP_EN to PM1a_CNT (0x604): ACPI power-off.
    public static let powerOff: [UInt8] = [0x66, 0xBA, 0x04, 0x06, 0x66, 0xB8, 0x00, 0x34, 0x66, 0xEF] + haltForever
    /// Writes 0x06 to the reset control port 0xCF9.
    public static let reset: [UInt8] = [0x66, 0xBA, 0xF9, 0x0C, 0xB0, 0x06, 0xEE] + haltForever
    /// Reports a panic through the pvpanic port 0x505.
    public static let panic: [UInt8] = [0x66, 0xBA, 0x05, 0x05, 0xB0, 0x01, 0xEE] + haltForever
    /// Loads an empty IDT and executes UD2: #UD → #DF → triple fault.
    public static let tripleFault: [UInt8] = [0x0F, 0x01, 0x1D, 0x02, 0x00, 0x00, 0x00, 0x0F, 0x0B] + [UInt8](repeating: 0, count: 10)
    /// Spins forever (for stop/signal tests).
    public static let spin: [UInt8] = [0xEB, 0xFE]
    /// OUT to port 0x80 `count` times (ECX loop), then powers off: an exit-cost payload.
    public static func portWrites(_ count: UInt32) -> [UInt8] {
        let c = withLittleEndianBytes(count)
        return [0xB9] + c + [0xE6, 0x80, 0xE2, 0xFC] + powerOff
    }

    static let haltForever: [UInt8] = [0xF4, 0xEB, 0xFD]

    static func withLittleEndianBytes(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// The image: one setup sector with a boot protocol 2.15 header, then the protected-mode
    /// part, whose offset 0x200 is the 64-bit entry point holding `code`.
    public static func image(code: [UInt8]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 1024 + 0x200 + max(code.count, 16))
        func put16(_ v: UInt16, _ at: Int) { bytes[at] = UInt8(v & 0xFF); bytes[at + 1] = UInt8(v >> 8) }
        func put32(_ v: UInt32, _ at: Int) { for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        bytes[0x1F1] = 1                      // setup_sects: the kernel starts at 2 * 512
        put16(0xAA55, 0x1FE)                  // boot_flag
        bytes[0x200] = 0xEB                   // jump over the header...
        bytes[0x201] = 0x66                   // ...which ends at 0x202 + 0x66 = 0x268
        put32(0x5372_6448, 0x202)             // "HdrS"
        put16(0x020F, 0x206)                  // protocol 2.15
        bytes[0x211] = 0x01                   // loadflags: LOADED_HIGH
        put32(0x0010_0000, 0x214)             // code32_start
        put32(0x7FFF_FFFF, 0x22C)             // initrd_addr_max
        put32(0x0020_0000, 0x230)             // kernel_alignment
        put16(0x0001, 0x236)                  // xloadflags: XLF_KERNEL_64
        put32(2047, 0x238)                    // cmdline_size
        put32(0x0010_0000, 0x260)             // init_size: 1 MiB
        bytes.replaceSubrange(1024 + 0x200 ..< 1024 + 0x200 + code.count, with: code)
        return bytes
    }
}
