/// Why a set of ACPI tables failed verification.
public enum ACPIParseError: Error, CustomStringConvertible, Equatable {
    case outOfBounds(what: String, address: UInt64, length: Int)
    case badSignature(what: String, found: String)
    case badChecksum(String)
    case badLength(what: String, length: Int)
    case pointerMismatch(what: String, address32: UInt64, address64: UInt64)

    public var description: String {
        switch self {
        case let .outOfBounds(what, address, length):
            "ACPI \(what) at \(hex(address)) (+\(length)) lies outside the given memory"
        case let .badSignature(what, found): "ACPI \(what): unexpected signature \"\(found)\""
        case let .badChecksum(what): "ACPI \(what): checksum does not sum to zero"
        case let .badLength(what, length): "ACPI \(what): implausible length \(length)"
        case let .pointerMismatch(what, a32, a64):
            "ACPI FADT: 32-bit \(what) pointer \(hex(a32)) differs from 64-bit pointer \(hex(a64))"
        }
    }
}

/// One ACPI table found by `ACPITableParser`.
public struct ACPITable: Sendable, Equatable {
    public var signature: String
    public var address: UInt64
    /// The whole table, header included.
    public var bytes: [UInt8]

    public var revision: UInt8 { bytes.count > 8 ? bytes[8] : 0 }
    /// Bytes after the 36-byte header (AML for the DSDT).
    public var body: ArraySlice<UInt8> { bytes.count > 36 ? bytes[36...] : [] }

    /// A MADT interrupt controller structure: its type and all its bytes (type and length included).
    public struct MADTEntry: Sendable, Equatable {
        public var type: UInt8
        public var bytes: [UInt8]
    }

    /// For an "APIC" table, the interrupt controller structures after the 44-byte fixed part.
    public var madtEntries: [MADTEntry] {
        var entries: [MADTEntry] = []
        var offset = 44
        while offset + 2 <= bytes.count {
            let length = Int(bytes[offset + 1])
            guard length >= 2, offset + length <= bytes.count else { break }
            entries.append(MADTEntry(type: bytes[offset], bytes: Array(bytes[offset..<(offset + length)])))
            offset += length
        }
        return entries
    }
}

/// Walks RSDP → XSDT → tables (and FADT → FACS, DSDT) in a memory image, verifying every
/// checksum and length. Used by tests and for debugging a guest's tables.
public struct ACPITableParser: Sendable {
    public let tables: [ACPITable]

    /// `memory` holds guest-physical bytes starting at `memoryBase`.
    public init(memory: [UInt8], memoryBase: UInt64, rsdpAddress: UInt64) throws(ACPIParseError) {
        func slice(_ what: String, _ address: UInt64, _ length: Int) throws(ACPIParseError) -> [UInt8] {
            guard address >= memoryBase, length >= 0, address - memoryBase <= UInt64(memory.count),
                  UInt64(length) <= UInt64(memory.count) - (address - memoryBase) else {
                throw .outOfBounds(what: what, address: address, length: length)
            }
            let start = Int(address - memoryBase)
            return Array(memory[start..<(start + length)])
        }
        func table(_ what: String, _ address: UInt64, checksummed: Bool = true) throws(ACPIParseError) -> ACPITable {
            let head = try slice(what, address, 8)
            let length = Int(head.u32(at: 4))
            let minimum = checksummed ? 36 : 8
            guard length >= minimum, length <= 1 << 24 else { throw .badLength(what: what, length: length) }
            let bytes = try slice(what, address, length)
            if checksummed, checksumByte(bytes) != 0 { throw .badChecksum(what) }
            return ACPITable(signature: String(decoding: bytes[0..<4], as: UTF8.self), address: address, bytes: bytes)
        }

        let rsdp = try slice("RSDP", rsdpAddress, 36)
        guard rsdp[0..<8].elementsEqual("RSD PTR ".utf8) else {
            throw .badSignature(what: "RSDP", found: String(decoding: rsdp[0..<8], as: UTF8.self))
        }
        guard checksumByte(rsdp[0..<20]) == 0 else { throw .badChecksum("RSDP (first 20 bytes)") }
        guard rsdp[15] >= 2, rsdp.u32(at: 20) == 36 else { throw .badLength(what: "RSDP", length: Int(rsdp.u32(at: 20))) }
        guard checksumByte(rsdp) == 0 else { throw .badChecksum("RSDP (extended)") }

        let xsdt = try table("XSDT", rsdp.u64(at: 24))
        guard xsdt.signature == "XSDT" else { throw .badSignature(what: "XSDT", found: xsdt.signature) }
        guard (xsdt.bytes.count - 36) % 8 == 0 else { throw .badLength(what: "XSDT", length: xsdt.bytes.count) }
        var found = [xsdt]
        for offset in stride(from: 36, to: xsdt.bytes.count, by: 8) {
            let entry = try table("XSDT entry", xsdt.bytes.u64(at: offset))
            found.append(entry)
            guard entry.signature == "FACP" else { continue }
            guard entry.bytes.count >= 148 else { throw .badLength(what: "FADT", length: entry.bytes.count) }
            let pointers: [(String, String, Int, Int, Bool)] = [
                ("DSDT", "DSDT", 40, 140, true), ("FACS", "FACS", 36, 132, false),
            ]
            for (what, signature, offset32, offset64, checksummed) in pointers {
                let a32 = UInt64(entry.bytes.u32(at: offset32)), a64 = entry.bytes.u64(at: offset64)
                guard a32 == 0 || a64 == 0 || a32 == a64 else {
                    throw .pointerMismatch(what: what, address32: a32, address64: a64)
                }
                let address = a64 != 0 ? a64 : a32
                guard address != 0 else { continue }
                let t = try table(what, address, checksummed: checksummed)
                guard t.signature == signature else { throw .badSignature(what: what, found: t.signature) }
                found.append(t)
            }
        }
        tables = found
    }

    /// The first table with `signature` ("XSDT", "FACP", "APIC", "DSDT", "FACS", ...).
    public func table(_ signature: String) -> ACPITable? {
        tables.first { $0.signature == signature }
    }
}
