/// The ACPI fixed hardware Keel emulates, as the FADT describes it. The VM assembly passes these
/// to the PM device so the tables and the device cannot disagree.
public enum ACPIPlatform {
    /// PM1a event block (status + enable, 2 × 16 bits).
    public static let pm1EventPort: UInt16 = 0x600
    public static let pm1EventLength: UInt8 = 4
    /// PM1a control block (16 bits; SLP_TYP in bits 12:10, SLP_EN bit 13, SCI_EN bit 0).
    public static let pm1ControlPort: UInt16 = 0x604
    public static let pm1ControlLength: UInt8 = 2
    /// SLP_TYP value for S5 (soft off), published in `\_S5`.
    public static let s5SleepType: UInt8 = 5
    /// Reset register (PCI reset control, SystemIO) and the value that resets.
    public static let resetPort: UInt16 = 0xCF9
    public static let resetValue: UInt8 = 0x06
    /// SCI: ISA IRQ 9, level-triggered active-high via an interrupt source override.
    public static let sciInterrupt: UInt8 = 9
}

/// Why the ACPI tables could not be built.
public enum ACPIBuildError: Error, CustomStringConvertible, Equatable {
    case invalidCPUCount(Int)
    case tooLarge(size: Int, maximum: Int)
    case aml(AMLError)
    case invalidBaseAddress(UInt64)

    public var description: String {
        switch self {
        case let .invalidCPUCount(n): "ACPI: CPU count \(n) is outside 1…255"
        case let .tooLarge(size, maximum): "ACPI tables need \(size) bytes; the ACPI area holds \(maximum)"
        case let .aml(error): "ACPI: DSDT: \(error)"
        case let .invalidBaseAddress(base):
            "ACPI: base address \(hex(base)) must be 64-byte aligned and the tables must end below 4 GiB"
        }
    }
}

/// Input for `ACPITables.build`.
public struct ACPIConfig: Sendable, Equatable {
    public var cpuCount: Int
    /// AML appended to the DSDT after `\_S5` (e.g. a VMBus device node in `\_SB`).
    public var extraDSDT: [UInt8]
    public var pm1EventPort: UInt16
    public var pm1ControlPort: UInt16
    public var s5SleepType: UInt8
    /// Guest-physical address the blob will be copied to.
    public var baseAddress: UInt64
    public var maximumSize: Int

    public init(cpuCount: Int, extraDSDT: [UInt8] = [],
                pm1EventPort: UInt16 = ACPIPlatform.pm1EventPort,
                pm1ControlPort: UInt16 = ACPIPlatform.pm1ControlPort,
                s5SleepType: UInt8 = ACPIPlatform.s5SleepType,
                baseAddress: UInt64 = BootLayout.acpiAreaBase,
                maximumSize: Int = BootLayout.acpiAreaSize) {
        self.cpuCount = cpuCount
        self.extraDSDT = extraDSDT
        self.pm1EventPort = pm1EventPort
        self.pm1ControlPort = pm1ControlPort
        self.s5SleepType = s5SleepType
        self.baseAddress = baseAddress
        self.maximumSize = maximumSize
    }
}

/// The built tables: one blob for `baseAddress`, and the RSDP's address for the zero page.
public struct ACPIBlob: Sendable, Equatable {
    public var baseAddress: UInt64
    public var bytes: [UInt8]
    public var rsdpAddress: UInt64
    public var guestBlob: GuestBlob { GuestBlob(guestPhysicalAddress: baseAddress, bytes: bytes) }
}

/// Builds Keel's ACPI tables: RSDP (rev 2) → XSDT → FADT (rev 6, with FACS and DSDT), MADT.
/// Blob layout: RSDP at offset 0 (16-byte aligned), FACS at 0x40 (64-byte aligned), then the
/// XSDT, FADT, MADT and DSDT, each 8-byte aligned.
public enum ACPITables {
    public static let oemID = "KEEL  "
    public static let oemTableID = "KEELVM  "
    public static let creatorID = "KEEL"
    static let oemRevision: UInt32 = 1
    static let creatorRevision: UInt32 = 1
    static let headerSize = 36
    static let fadtSize = 276

    /// Builds the blob for `config.baseAddress`; fails if it exceeds `config.maximumSize`.
    public static func build(_ config: ACPIConfig) throws(ACPIBuildError) -> ACPIBlob {
        guard (1...255).contains(config.cpuCount) else { throw .invalidCPUCount(config.cpuCount) }
        let base = config.baseAddress

        let dsdtBody: [UInt8]
        do {
            let s5 = AML.integer(UInt64(config.s5SleepType))
            dsdtBody = try AML.name("\\_S5", AML.package([s5, s5, AML.integer(0), AML.integer(0)])) + config.extraDSDT
        } catch { throw .aml(error) }
        let dsdt = table("DSDT", revision: 2, body: dsdtBody)
        let madt = table("APIC", revision: 5, body: madtBody(cpuCount: config.cpuCount))

        // Lay the tables out first: the XSDT and FADT hold the others' addresses.
        var size = 0
        func place(_ length: Int, alignment: Int) -> Int {
            size = (size + alignment - 1) / alignment * alignment
            defer { size += length }
            return size
        }
        let rsdpOffset = place(36, alignment: 16)
        let facsOffset = place(64, alignment: 64)
        let xsdtOffset = place(headerSize + 2 * 8, alignment: 8)
        let fadtOffset = place(fadtSize, alignment: 8)
        let madtOffset = place(madt.count, alignment: 8)
        let dsdtOffset = place(dsdt.count, alignment: 8)
        guard size <= config.maximumSize else { throw .tooLarge(size: size, maximum: config.maximumSize) }
        // The FADT's 32-bit FACS/DSDT pointers and the FACS alignment depend on the base.
        guard base % 64 == 0, base <= BootLayout.highMemoryBase - UInt64(size) else {
            throw .invalidBaseAddress(base)
        }

        var xsdtBody = ByteWriter()
        xsdtBody.u64(base + UInt64(fadtOffset))
        xsdtBody.u64(base + UInt64(madtOffset))
        let fadt = table("FACP", revision: 6, body: fadtBody(
            config: config, facs: base + UInt64(facsOffset), dsdt: base + UInt64(dsdtOffset)))

        var blob = ByteWriter(zeroes: size)
        blob.set(rsdp(xsdtAddress: base + UInt64(xsdtOffset)), at: rsdpOffset)
        blob.set(facs(), at: facsOffset)
        blob.set(table("XSDT", revision: 1, body: xsdtBody.bytes), at: xsdtOffset)
        blob.set(fadt, at: fadtOffset)
        blob.set(madt, at: madtOffset)
        blob.set(dsdt, at: dsdtOffset)
        return ACPIBlob(baseAddress: base, bytes: blob.bytes, rsdpAddress: base + UInt64(rsdpOffset))
    }

    /// A table: the 36-byte header with length and checksum, then `body`.
    static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: headerSize + body.count)
        w.ascii(signature, length: 4)
        w.u32(UInt32(headerSize + body.count))
        w.u8(revision)
        w.u8(0)  // checksum
        w.ascii(oemID, length: 6)
        w.ascii(oemTableID, length: 8)
        w.u32(oemRevision)
        w.ascii(creatorID, length: 4)
        w.u32(creatorRevision)
        w.append(body)
        w.set8(checksumByte(w.bytes), at: 9)
        return w.bytes
    }

    static func rsdp(xsdtAddress: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 36)
        w.ascii("RSD PTR ", length: 8)
        w.u8(0)  // checksum over the first 20 bytes
        w.ascii(oemID, length: 6)
        w.u8(2)  // revision
        w.u32(0)  // RSDT address: none, XSDT only
        w.u32(36)
        w.u64(xsdtAddress)
        w.u8(0)  // extended checksum over all 36 bytes
        w.zeroes(3)
        w.set8(checksumByte(w.bytes[0..<20]), at: 8)
        w.set8(checksumByte(w.bytes), at: 32)
        return w.bytes
    }

    /// FACS: 64 bytes, version 2, no checksum; the OS keeps the global lock and waking vector here.
    static func facs() -> [UInt8] {
        var w = ByteWriter(zeroes: 64)
        w.set(Array("FACS".utf8), at: 0)
        w.set32(64, at: 4)
        w.set8(2, at: 32)  // version
        return w.bytes
    }
}
