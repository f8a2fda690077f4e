@testable import KeelPlatform

/// A synthetic bzImage: boot sector + setup header + `setupSects` sectors + a small "kernel".
struct FakeBzImage {
    var setupSects: UInt8 = 4
    var bootFlag: UInt16 = 0xAA55
    var signature: [UInt8] = Array("HdrS".utf8)
    var version: UInt16 = 0x020F
    var headerEndJump: UInt8 = 0x66  // header ends at 0x268
    var loadflags: UInt8 = 0x01
    var xloadflags: UInt16 = 0x0F
    var kernelAlignment: UInt32 = 0x20_0000
    var relocatable: UInt8 = 1
    var prefAddress: UInt64 = 0x100_0000
    var initSize: UInt32 = 0x200_0000
    var cmdlineSize: UInt32 = 2047
    var initrdAddrMax: UInt32 = 0x7FFF_FFFF
    var kernelBytes = 4096

    var bytes: [UInt8] {
        let sects = setupSects == 0 ? 4 : Int(setupSects)
        var b = [UInt8](repeating: 0, count: (sects + 1) * 512 + kernelBytes)
        func put(_ value: UInt64, _ width: Int, _ offset: Int) {
            for i in 0..<width { b[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        put(UInt64(setupSects), 1, 0x1F1)
        put(UInt64(kernelBytes / 16), 4, 0x1F4)
        put(UInt64(bootFlag), 2, 0x1FE)
        b[0x200] = 0xEB
        b[0x201] = headerEndJump
        for (i, c) in signature.enumerated() { b[0x202 + i] = c }
        put(UInt64(version), 2, 0x206)
        put(UInt64(loadflags), 1, 0x211)
        put(UInt64(initrdAddrMax), 4, 0x22C)
        put(UInt64(kernelAlignment), 4, 0x230)
        put(UInt64(relocatable), 1, 0x234)
        put(UInt64(xloadflags), 2, 0x236)
        put(UInt64(cmdlineSize), 4, 0x238)
        put(prefAddress, 8, 0x258)
        put(UInt64(initSize), 4, 0x260)
        put(0x1234_5678, 4, 0x264)  // handover_offset: a marker to check the header copy
        // Kernel marker and a byte just past the header that must not be copied.
        b[(sects + 1) * 512] = 0x4B
        b[0x268] = 0xEE
        return b
    }
}

extension Array where Element == UInt8 {
    func le(_ offset: Int, _ width: Int) -> UInt64 { le(at: offset, width: width) }
}
