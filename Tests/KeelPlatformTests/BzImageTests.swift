import Testing
@testable import KeelPlatform

@Suite struct BzImageTests {
    @Test func parsesHeaderFields() throws {
        let image = try BzImage(FakeBzImage().bytes)
        #expect(image.setupSects == 4)
        #expect(image.kernelOffset == 5 * 512)
        #expect(image.kernelRange == 2560..<(2560 + 4096))
        #expect(image.kernel.first == 0x4B)
        #expect(image.protocolVersion == 0x020F)
        #expect(image.loadflags == 0x01)
        #expect(image.xloadflags == 0x0F)
        #expect(image.kernelAlignment == 0x20_0000)
        #expect(image.relocatable)
        #expect(image.prefAddress == 0x100_0000)
        #expect(image.initSize == 0x200_0000)
        #expect(image.cmdlineSize == 2047)
        #expect(image.initrdAddrMax == 0x7FFF_FFFF)
        #expect(image.setupHeaderEnd == 0x268)
        #expect(image.setupHeader.startIndex == 0x1F1)
        #expect(image.setupHeader.count == 0x268 - 0x1F1)
    }

    @Test func setupSectsZeroMeansFour() throws {
        var fake = FakeBzImage()
        fake.setupSects = 0
        let image = try BzImage(fake.bytes)
        #expect(image.setupSects == 4)
        #expect(image.kernelOffset == 2560)
    }

    @Test func headerEndIsCappedAtZeroPageLimit() throws {
        var fake = FakeBzImage()
        fake.headerEndJump = 0xFF
        #expect(try BzImage(fake.bytes).setupHeaderEnd == 0x290)
    }

    @Test func rejectsBadBootFlag() {
        var fake = FakeBzImage()
        fake.bootFlag = 0x1234
        #expect(throws: BzImageError.missingBootFlag(found: 0x1234)) { try BzImage(fake.bytes) }
    }

    @Test func rejectsMissingSignature() {
        var fake = FakeBzImage()
        fake.signature = Array("ELF!".utf8)
        #expect(throws: BzImageError.missingHeaderSignature) { try BzImage(fake.bytes) }
        #expect(BzImageError.missingHeaderSignature.description == "not a bzImage: missing HdrS signature at 0x202")
    }

    @Test func rejectsOldProtocol() {
        var fake = FakeBzImage()
        fake.version = 0x020B
        #expect(throws: BzImageError.protocolTooOld(major: 2, minor: 11)) { try BzImage(fake.bytes) }
        #expect(BzImageError.protocolTooOld(major: 2, minor: 11).description.contains("boot protocol 2.11 too old"))
        #expect(BzImageError.protocolTooOld(major: 2, minor: 6).description.contains("boot protocol 2.06 too old"))
    }

    @Test func rejectsKernelWithout64BitEntry() {
        var fake = FakeBzImage()
        fake.xloadflags = 0x02
        #expect(throws: BzImageError.no64BitEntry) { try BzImage(fake.bytes) }
    }

    @Test func rejectsTruncatedFiles() {
        #expect(throws: BzImageError.truncated(size: 100, needed: 0x290)) { try BzImage([UInt8](repeating: 0, count: 100)) }
        let full = FakeBzImage().bytes
        #expect(throws: BzImageError.truncated(size: full.count - 1, needed: full.count)) {
            try BzImage(Array(full.dropLast()))
        }
    }

    @Test func rejectsShortHeader() {
        var fake = FakeBzImage()
        fake.headerEndJump = 0x30
        #expect(throws: BzImageError.headerTooShort(end: 0x232)) { try BzImage(fake.bytes) }
    }

    @Test func kernelEndAccountsForRelocation() throws {
        var fake = FakeBzImage()
        let image = try BzImage(fake.bytes)
        // Relocatable: decompresses at max(align(0x100000), pref 16 MiB).
        #expect(image.kernelEnd(loadAddress: 0x10_0000) == 0x100_0000 + 0x200_0000)
        #expect(image.kernelEnd(loadAddress: 0x200_0001) == 0x220_0000 + 0x200_0000)
        fake.relocatable = 0
        fake.prefAddress = 0x10_0000
        #expect(try BzImage(fake.bytes).kernelEnd(loadAddress: 0x10_0000) == 0x10_0000 + 0x200_0000)
    }
}
