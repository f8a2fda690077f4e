import KeelPlatform
import KeelSystem

/// The boot vCPU's state for the Linux 64-bit boot protocol: entry point and zero page.
public struct BootEntry: Sendable, Equatable {
    public let instructionPointer: UInt64
    public let zeroPage: UInt64
    public let stackPointer: UInt64
}

/// Loads a bzImage, its initrd and command line, the zero page, boot page tables, GDT and the
/// ACPI tables into guest RAM (direct kernel boot, no firmware).
public enum BootLoader {
    /// Reads and places everything; file or format problems are `ConfigurationError`s naming the
    /// file, so `keel run` can report them as bad input.
    public static func load(configuration: VMConfiguration, layout: GuestMemoryLayout, ram: GuestRAM,
                            extraDSDT: [UInt8]) throws -> BootEntry {
        let kernelBytes = try readFile(configuration.kernelPath, option: "--kernel")
        let image: BzImage
        do { image = try BzImage(kernelBytes) } catch {
            throw ConfigurationError("--kernel \(configuration.kernelPath): \(error)")
        }
        let kernelEnd = image.kernelEnd(loadAddress: BootLayout.kernelLoadAddress)
        guard kernelEnd <= layout.lowMemoryTop else {
            throw ConfigurationError("--kernel \(configuration.kernelPath): needs \(kernelEnd >> 20) MiB, more than guest memory")
        }
        try ram.write(image.kernel, at: BootLayout.kernelLoadAddress)

        var initrd: InitrdPlacement?
        if let path = configuration.initrdPath {
            let bytes = try readFile(path, option: "--initrd")
            let address: UInt64
            do {
                address = try BootParams.initrdAddress(size: UInt64(bytes.count), image: image, lowMemoryTop: layout.lowMemoryTop)
            } catch { throw ConfigurationError("--initrd \(path): \(error)") }
            try ram.write(bytes, at: address)
            initrd = InitrdPlacement(address: address, size: UInt64(bytes.count))
        }

        let acpi = try ACPITables.build(ACPIConfig(cpuCount: configuration.cpus, extraDSDT: extraDSDT))
        let params: BootParams
        do {
            params = try BootParams(image: image, commandLine: configuration.commandLine, initrd: initrd,
                                    e820: layout.e820, rsdpAddress: acpi.rsdpAddress)
        } catch { throw ConfigurationError("--cmdline: \(error)") }

        var blobs = [acpi.guestBlob, GDT.blob(),
                     GuestBlob(guestPhysicalAddress: BootLayout.zeroPageAddress, bytes: params.zeroPage),
                     GuestBlob(guestPhysicalAddress: BootLayout.commandLineAddress, bytes: params.commandLine)]
        blobs += PageTables.identityMap4G()
        for blob in blobs { try ram.write(blob.bytes, at: blob.guestPhysicalAddress) }
        return BootEntry(instructionPointer: BootLayout.kernelEntry64, zeroPage: BootLayout.zeroPageAddress,
                         stackPointer: BootLayout.initialStackPointer)
    }

    static func readFile(_ path: String, option: String) throws(ConfigurationError) -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try Host.readFile(path) } catch {
            throw ConfigurationError("\(option) \(path): cannot be read (\(error))")
        }
        guard !bytes.isEmpty else { throw ConfigurationError("\(option) \(path): file is empty") }
        return bytes
    }
}
