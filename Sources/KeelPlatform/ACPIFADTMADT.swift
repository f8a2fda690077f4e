/// FADT and MADT bodies (the bytes after the common 36-byte header).
extension ACPITables {
    /// FADT flags.
    enum FADTFlags {
        static let wbinvd: UInt32 = 1 << 0
        static let powerButton: UInt32 = 1 << 4  // no fixed-feature power button
        static let sleepButton: UInt32 = 1 << 5  // no fixed-feature sleep button
        static let resetRegisterSupported: UInt32 = 1 << 10
    }

    /// IAPC_BOOT_ARCH flags.
    enum BootArch {
        static let legacyDevices: UInt16 = 1 << 0
        static let i8042: UInt16 = 1 << 1
        static let vgaNotPresent: UInt16 = 1 << 2
    }

    enum AddressSpace {
        static let systemIO: UInt8 = 1
    }

    /// A Generic Address Structure (12 bytes). accessSize: 1 byte, 2 word, 3 dword, 4 qword.
    static func gas(_ w: inout ByteWriter, space: UInt8, bitWidth: UInt8, accessSize: UInt8, address: UInt64) {
        w.u8(space)
        w.u8(bitWidth)
        w.u8(0)  // bit offset
        w.u8(accessSize)
        w.u64(address)
    }

    /// FADT revision 6 body: 240 bytes, 276 with the header. Not hardware-reduced: PM1a event and
    /// control blocks, no PM timer, no GPE blocks, SMI_CMD 0 (always in ACPI mode).
    static func fadtBody(config: ACPIConfig, facs: UInt64, dsdt: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 240)
        w.u32(UInt32(truncatingIfNeeded: facs))  // 36 FIRMWARE_CTRL
        w.u32(UInt32(truncatingIfNeeded: dsdt))  // 40 DSDT
        w.u8(0)  // 44 reserved
        w.u8(0)  // 45 preferred PM profile: unspecified
        w.u16(UInt16(ACPIPlatform.sciInterrupt))  // 46 SCI_INT
        w.u32(0)  // 48 SMI_CMD
        w.u8(0); w.u8(0); w.u8(0); w.u8(0)  // 52 ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
        w.u32(UInt32(config.pm1EventPort))  // 56 PM1a_EVT_BLK
        w.u32(0)  // 60 PM1b_EVT_BLK
        w.u32(UInt32(config.pm1ControlPort))  // 64 PM1a_CNT_BLK
        w.u32(0)  // 68 PM1b_CNT_BLK
        w.u32(0)  // 72 PM2_CNT_BLK
        w.u32(0)  // 76 PM_TMR_BLK
        w.u32(0)  // 80 GPE0_BLK
        w.u32(0)  // 84 GPE1_BLK
        w.u8(ACPIPlatform.pm1EventLength)  // 88 PM1_EVT_LEN
        w.u8(ACPIPlatform.pm1ControlLength)  // 89 PM1_CNT_LEN
        w.u8(0); w.u8(0); w.u8(0); w.u8(0); w.u8(0); w.u8(0)  // 90 PM2_CNT_LEN … 95 CST_CNT
        w.u16(0); w.u16(0); w.u16(0); w.u16(0)  // 96 P_LVL2_LAT, P_LVL3_LAT, FLUSH_SIZE, FLUSH_STRIDE
        w.u8(0); w.u8(0); w.u8(0); w.u8(0); w.u8(0)  // 104 DUTY_OFFSET … 108 CENTURY
        w.u16(BootArch.legacyDevices | BootArch.i8042 | BootArch.vgaNotPresent)  // 109 IAPC_BOOT_ARCH
        w.u8(0)  // 111 reserved
        w.u32(FADTFlags.wbinvd | FADTFlags.powerButton | FADTFlags.sleepButton
              | FADTFlags.resetRegisterSupported)  // 112 flags
        gas(&w, space: AddressSpace.systemIO, bitWidth: 8, accessSize: 1,
            address: UInt64(ACPIPlatform.resetPort))  // 116 RESET_REG
        w.u8(ACPIPlatform.resetValue)  // 128 RESET_VALUE
        w.u16(0)  // 129 ARM_BOOT_ARCH
        w.u8(5)  // 131 FADT minor version (6.5)
        w.u64(facs)  // 132 X_FIRMWARE_CTRL
        w.u64(dsdt)  // 140 X_DSDT
        gas(&w, space: AddressSpace.systemIO, bitWidth: ACPIPlatform.pm1EventLength * 8, accessSize: 2,
            address: UInt64(config.pm1EventPort))  // 148 X_PM1a_EVT_BLK
        w.zeroes(12)  // 160 X_PM1b_EVT_BLK
        gas(&w, space: AddressSpace.systemIO, bitWidth: ACPIPlatform.pm1ControlLength * 8, accessSize: 2,
            address: UInt64(config.pm1ControlPort))  // 172 X_PM1a_CNT_BLK
        w.zeroes(12 * 5)  // 184 X_PM1b_CNT_BLK, X_PM2_CNT_BLK, X_PM_TMR_BLK, X_GPE0_BLK, X_GPE1_BLK
        w.zeroes(12 * 2)  // 244 SLEEP_CONTROL_REG, SLEEP_STATUS_REG
        w.u64(0)  // 268 hypervisor vendor identity
        return w.bytes
    }

    enum MADTEntryType {
        static let localAPIC: UInt8 = 0
        static let ioAPIC: UInt8 = 1
        static let interruptSourceOverride: UInt8 = 2
        static let localAPICNMI: UInt8 = 4
    }

    /// MADT body: LAPIC address and PCAT_COMPAT, one enabled Local APIC per CPU (UID = APIC id =
    /// index), the IO-APIC (id = cpu count, GSI base 0), IRQ0→GSI2 and SCI overrides, LINT1 NMI.
    static func madtBody(cpuCount: Int) -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(BootLayout.lapicAddress))
        w.u32(1)  // PCAT_COMPAT: dual 8259s present (masked by Linux)
        for cpu in 0..<cpuCount {
            w.u8(MADTEntryType.localAPIC); w.u8(8)
            w.u8(UInt8(cpu))  // ACPI processor UID
            w.u8(UInt8(cpu))  // APIC id
            w.u32(1)  // enabled
        }
        w.u8(MADTEntryType.ioAPIC); w.u8(12)
        w.u8(UInt8(cpuCount)); w.u8(0)
        w.u32(UInt32(BootLayout.ioapicAddress))
        w.u32(0)  // GSI base
        // ISA IRQ0 (PIT) is wired to IO-APIC pin 2; bus-conforming polarity/trigger.
        w.u8(MADTEntryType.interruptSourceOverride); w.u8(10)
        w.u8(0); w.u8(0); w.u32(2); w.u16(0)
        // SCI: level-triggered (bits 3:2 = 11), active high (bits 1:0 = 01).
        w.u8(MADTEntryType.interruptSourceOverride); w.u8(10)
        w.u8(0); w.u8(ACPIPlatform.sciInterrupt); w.u32(UInt32(ACPIPlatform.sciInterrupt)); w.u16(0x000D)
        // NMI on LINT1 of every processor.
        w.u8(MADTEntryType.localAPICNMI); w.u8(6)
        w.u8(0xFF); w.u16(0); w.u8(1)
        return w.bytes
    }
}
