import Foundation
import KeelSystem
import Testing

/// GuestRAM's accessors (plain host memory; no /dev/kvm needed).
@Suite struct GuestRAMTests {
    @Test func setBitsReturnsTheOldByteAndRefusesAddressesOutsideRAM() throws {
        let ram = try GuestRAM(ranges: [(guestAddress: 0x1000, size: 0x1000)])
        #expect(try ram.setBits(0x04, at: 0x1010) == 0)
        #expect(try ram.setBits(0x81, at: 0x1010) == 0x04)
        #expect(try ram.load(UInt8.self, at: 0x1010) == 0x85)
        #expect(throws: GuestMemoryError(address: 0x2000, count: 1)) { try ram.setBits(1, at: 0x2000) }
    }

    /// Eight threads each set their own bit in every byte of a page at once: with a plain
    /// read-modify-write some bits would be lost.
    @Test func concurrentSetBitsLoseNothing() throws {
        let ram = try GuestRAM(ranges: [(guestAddress: 0, size: 0x1000)])
        let threads = try (0..<8).map { bit in
            try NamedThread(name: "set-bit-\(bit)") {
                for round in 0..<4 {
                    for offset in 0..<0x1000 { _ = try? ram.setBits(UInt8(1) << bit, at: UInt64((offset + round * 97) % 0x1000)) }
                }
            }
        }
        threads.forEach { $0.join() }
        let bytes = try ram.read(at: 0, count: 0x1000)
        #expect(bytes.allSatisfy { $0 == 0xFF })
    }

    /// Each region starts on a 2 MiB boundary and is advised for transparent huge pages, so KVM
    /// can map the guest with 2 MiB pages (the kernel reports the advice as THPeligible).
    @Test func regionsAreHugePageAlignedAndAdvised() throws {
        let ram = try GuestRAM(ranges: [(guestAddress: 0, size: 6 << 20), (guestAddress: 1 << 32, size: 0x3000)])
        #expect(ram.regions.map { $0.hostAddress % (2 << 20) } == [0, 0])
        #expect(try ram.read(at: (6 << 20) - 1, count: 1) == [0])
        let mode = (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
        guard !mode.contains("[never]"), !mode.isEmpty else {
            print("SKIPPED THPeligible check: transparent huge pages are off on this host (\(mode))")
            return
        }
        // /proc files report size 0, so read them to the end rather than by their size.
        let data = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps")).readDataToEndOfFile()
        let smaps = String(decoding: data, as: UTF8.self)
        let address = ram.regions[0].hostAddress
        // The header line of the mapping that holds the region ("start-end perms ..."), then
        // its "Key: value" lines up to the next header.
        let lines = smaps.split(separator: "\n").drop { line in
            let bounds = line.split(separator: " ").first?.split(separator: "-").compactMap { UInt64($0, radix: 16) } ?? []
            return !(bounds.count == 2 && bounds[0] <= address && address < bounds[1])
        }
        #expect(!lines.isEmpty)
        let fields = lines.dropFirst().prefix { $0.split(separator: " ").first?.hasSuffix(":") == true }
        #expect(fields.contains { $0.hasPrefix("THPeligible:") && $0.hasSuffix("1") })
    }

    @Test func sliceWritesLandWhereAsked() throws {
        let ram = try GuestRAM(ranges: [(guestAddress: 0, size: 0x1000)])
        let bytes: [UInt8] = Array(1...16)
        try ram.write(bytes[4..<12], at: 0x100)
        #expect(try ram.read(at: 0x100, count: 8) == Array(5...12))
        #expect(throws: GuestMemoryError(address: 0xFFC, count: 8)) { try ram.write(bytes[0..<8], at: 0xFFC) }
    }
}
