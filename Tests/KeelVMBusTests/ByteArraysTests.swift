import KeelSystem
import Testing

/// The byte-array helpers of KeelSystem (`ByteArrays.swift`): `littleEndian(_:at:)` reads
/// guest-written headers, `init(zeros:)` builds messages. Tested here, next to their main users
/// (the GPA-direct parser, the packet encoders).
@Suite struct ByteArraysTests {
    let bytes: [UInt8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99]

    @Test func fieldsInsideAreLittleEndianAtAnyAlignment() {
        #expect(bytes.littleEndian(UInt32.self, at: 0) == 0x4433_2211)
        #expect(bytes.littleEndian(UInt32.self, at: 5) == 0x9988_7766)
        #expect(bytes.littleEndian(UInt16.self, at: 3) == 0x5544)
        #expect(bytes.littleEndian(UInt64.self, at: 1) == 0x9988_7766_5544_3322)
        #expect(bytes.littleEndian(UInt8.self, at: 8) == 0x99)
    }

    @Test func bytesOutsideReadAsZeroAndNeverTrap() {
        #expect(bytes.littleEndian(UInt32.self, at: 7) == 0x9988)
        #expect(bytes.littleEndian(UInt32.self, at: -2) == 0x2211_0000)
        #expect(bytes.littleEndian(UInt64.self, at: 9) == 0)
        #expect(bytes.littleEndian(UInt64.self, at: .max) == 0)
        #expect(bytes.littleEndian(UInt64.self, at: .min) == 0)
        #expect([UInt8]().littleEndian(UInt32.self, at: 0) == 0)
    }

    @Test func zerosAreAsManyZeroBytesAsAsked() {
        for count in [0, 1, 44, 4096] {
            #expect([UInt8](zeros: count) == [UInt8](repeating: 0, count: count))
        }
    }
}
