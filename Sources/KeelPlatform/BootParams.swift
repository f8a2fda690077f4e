/// Why the zero page or the initrd placement could not be built.
public enum BootParamsError: Error, CustomStringConvertible, Equatable {
    case commandLineTooLong(length: Int, maximum: Int)
    case commandLineContainsNUL
    case tooManyE820Entries(count: Int, maximum: Int)
    case initrdAboveLimit(end: UInt64, initrdAddrMax: UInt32)
    case initrdTooLarge(size: UInt64, available: UInt64)

    public var description: String {
        switch self {
        case let .commandLineTooLong(length, maximum):
            "kernel command line is \(length) bytes; the kernel accepts at most \(maximum)"
        case .commandLineContainsNUL:
            "kernel command line contains a NUL byte"
        case let .tooManyE820Entries(count, maximum):
            "e820 map has \(count) entries; the zero page holds at most \(maximum)"
        case let .initrdAboveLimit(end, max):
            "initrd ends at \(hex(end)), above the kernel's initrd_addr_max \(hex(max))"
        case let .initrdTooLarge(size, available):
            "initrd too large for guest memory: \(size) bytes, \(available) bytes free between the kernel and the initrd limit"
        }
    }
}

/// Where the initrd sits in guest memory.
public struct InitrdPlacement: Sendable, Equatable {
    public var address: UInt64
    public var size: UInt64
    public init(address: UInt64, size: UInt64) {
        self.address = address
        self.size = size
    }
}

/// The Linux zero page (`struct boot_params`, 4 KiB) and the NUL-terminated command line, ready
/// to copy to `BootLayout.zeroPageAddress` and the command line address. RSI must point at the
/// zero page when entering the kernel's 64-bit entry.
public struct BootParams: Sendable {
    /// Offsets in `struct boot_params` outside the setup header (see bootparam.h).
    enum Offset {
        static let acpiRsdpAddr = 0x070
        static let extRamdiskImage = 0x0C0
        static let extRamdiskSize = 0x0C4
        static let extCmdLinePtr = 0x0C8
        static let e820Entries = 0x1E8
        static let e820Table = 0x2D0
    }

    public static let size = 4096
    /// type_of_loader value for a boot loader without an assigned id.
    public static let undefinedLoaderType: UInt8 = 0xFF
    /// End of the setup heap, relative to the real-mode segment (boot.rst's usual value).
    public static let heapEnd: UInt16 = 0xFE00

    public let zeroPage: [UInt8]
    /// The command line bytes followed by a NUL.
    public let commandLine: [UInt8]

    /// Builds the zero page for `image`. The command line must be at most `cmdline_size` bytes
    /// (and fit the 4 KiB buffer with its NUL); the initrd must end at or below initrd_addr_max.
    public init(
        image: BzImage,
        commandLine: String,
        commandLineAddress: UInt64 = BootLayout.commandLineAddress,
        initrd: InitrdPlacement? = nil,
        e820: [E820Entry],
        rsdpAddress: UInt64
    ) throws(BootParamsError) {
        let line = Array(commandLine.utf8)
        guard !line.contains(0) else { throw .commandLineContainsNUL }
        let maxLength = min(Int(image.cmdlineSize), BootLayout.commandLineMaxSize - 1)
        guard line.count <= maxLength else { throw .commandLineTooLong(length: line.count, maximum: maxLength) }
        guard e820.count <= E820Entry.maxZeroPageEntries else {
            throw .tooManyE820Entries(count: e820.count, maximum: E820Entry.maxZeroPageEntries)
        }

        var page = ByteWriter(zeroes: Self.size)
        page.set(Array(image.setupHeader), at: BzImage.Offset.setupSects)
        page.set8(Self.undefinedLoaderType, at: BzImage.Offset.typeOfLoader)
        let flags = (image.loadflags | BzImage.LoadFlags.loadedHigh | BzImage.LoadFlags.canUseHeap)
            & ~BzImage.LoadFlags.keepSegments
        page.set8(flags, at: BzImage.Offset.loadflags)
        page.set16(Self.heapEnd, at: BzImage.Offset.heapEndPtr)
        page.set32(UInt32(truncatingIfNeeded: commandLineAddress), at: BzImage.Offset.cmdLinePtr)
        page.set32(UInt32(truncatingIfNeeded: commandLineAddress >> 32), at: Offset.extCmdLinePtr)

        if let initrd {
            let end = initrd.address + initrd.size
            guard initrd.size == 0 || end - 1 <= UInt64(image.initrdAddrMax) else {
                throw .initrdAboveLimit(end: end, initrdAddrMax: image.initrdAddrMax)
            }
            page.set32(UInt32(truncatingIfNeeded: initrd.address), at: BzImage.Offset.ramdiskImage)
            page.set32(UInt32(truncatingIfNeeded: initrd.size), at: BzImage.Offset.ramdiskSize)
            page.set32(UInt32(truncatingIfNeeded: initrd.address >> 32), at: Offset.extRamdiskImage)
            page.set32(UInt32(truncatingIfNeeded: initrd.size >> 32), at: Offset.extRamdiskSize)
        } else {
            page.set32(0, at: BzImage.Offset.ramdiskImage)
            page.set32(0, at: BzImage.Offset.ramdiskSize)
        }

        page.set64(rsdpAddress, at: Offset.acpiRsdpAddr)
        page.set8(UInt8(e820.count), at: Offset.e820Entries)
        for (i, entry) in e820.enumerated() {
            page.set(entry.encoded, at: Offset.e820Table + i * E820Entry.encodedSize)
        }

        zeroPage = page.bytes
        self.commandLine = line + [0]
    }

    /// The highest page-aligned address for an initrd of `size` bytes: it ends at or below
    /// min(initrd_addr_max + 1, `lowMemoryTop`) and starts at or above the kernel's end
    /// (`BzImage.kernelEnd(loadAddress:)`).
    public static func initrdAddress(
        size: UInt64,
        image: BzImage,
        lowMemoryTop: UInt64,
        kernelLoadAddress: UInt64 = BootLayout.kernelLoadAddress
    ) throws(BootParamsError) -> UInt64 {
        let limit = min(UInt64(image.initrdAddrMax) + 1, lowMemoryTop)
        let floor = alignUp(image.kernelEnd(loadAddress: kernelLoadAddress), BootLayout.pageSize)
        guard limit > floor, size <= limit - floor else {
            throw .initrdTooLarge(size: size, available: limit > floor ? limit - floor : 0)
        }
        let address = alignDown(limit - size, BootLayout.pageSize)
        guard address >= floor else {
            throw .initrdTooLarge(size: size, available: limit - floor)
        }
        return address
    }
}
