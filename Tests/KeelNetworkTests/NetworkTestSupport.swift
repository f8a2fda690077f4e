import KeelNetwork
@testable import KeelVMBus
import Testing

let testMAC: [UInt8] = [0x00, 0x15, 0x5D, 0x12, 0x34, 0x56]
let broadcastMAC: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]

func le32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
}

func le16(_ bytes: [UInt8], _ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }

func u32Bytes(_ values: [UInt32]) -> [UInt8] {
    values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}

/// The u32 fields of an NVSP message or RNDIS message.
func fields(_ bytes: [UInt8]) -> [UInt32] { (0..<bytes.count / 4).map { le32(bytes, 4 * $0) } }

/// An NVSP message as Linux sends it: the 40-byte union.
func nvsp(_ values: [UInt32], size: Int = 40) -> [UInt8] {
    Array((u32Bytes(values) + [UInt8](repeating: 0, count: 40)).prefix(size))
}

func inband(_ values: [UInt32], id: UInt64 = 7, flags: UInt16 = 1, size: Int = 40) -> VMBusPacket {
    VMBusPacket(type: .dataInBand, flags: flags, transactionID: id, payload: nvsp(values, size: size))
}

/// SEND_RECV_BUF / SEND_SEND_BUF: gpadl u32, id u16.
func bufferRequest(_ type: UInt32, gpadl: UInt32, id: UInt16, transactionID: UInt64 = 9) -> VMBusPacket {
    inband([type, gpadl, UInt32(id)], id: transactionID)
}

/// An Ethernet frame of `length` bytes to `destination`, with a recognisable body.
func ethernetFrame(to destination: [UInt8] = testMAC, length: Int = 60, seed: UInt8 = 1) -> [UInt8] {
    var frame = destination + [0x02, 0, 0, 0, 0, 0x99] + [0x08, 0x00]
    frame += (0..<max(0, length - 14)).map { UInt8(truncatingIfNeeded: Int(seed) &+ $0) }
    return frame
}

enum RNDISRequest {
    static func initialize(_ id: UInt32) -> [UInt8] { u32Bytes([2, 24, id, 1, 0, 0x4000]) }
    static func halt(_ id: UInt32) -> [UInt8] { u32Bytes([3, 12, id]) }
    static func keepalive(_ id: UInt32) -> [UInt8] { u32Bytes([8, 12, id]) }
    static func reset() -> [UInt8] { u32Bytes([6, 12, 0]) }
    static func query(_ id: UInt32, _ oid: UInt32, input: [UInt8] = []) -> [UInt8] {
        u32Bytes([4, UInt32(28 + input.count), id, oid, UInt32(input.count), 20, 0]) + input
    }
    static func set(_ id: UInt32, _ oid: UInt32, _ data: [UInt8]) -> [UInt8] {
        u32Bytes([5, UInt32(28 + data.count), id, oid, UInt32(data.count), 20, 0]) + data
    }

    /// A PACKET message as Linux builds it: PPIs right after the 36-byte body, then the frame;
    /// `align` pads msg_len (batched messages are padded to the INIT alignment).
    static func packet(_ frame: [UInt8], ppis: [UInt8] = [], align: Int = 1) -> [UInt8] {
        let unpadded = 44 + ppis.count + frame.count
        let length = (unpadded + align - 1) / align * align
        let ppiOffset: UInt32 = ppis.isEmpty ? 0 : 36
        var bytes = u32Bytes([1, UInt32(length), UInt32(36 + ppis.count), UInt32(frame.count), 0, 0, 0,
                              ppiOffset, UInt32(ppis.count), 0, 0])
        bytes += ppis + frame
        return bytes + [UInt8](repeating: 0, count: length - unpadded)
    }

    /// One PPI element: size, type, offset 12, value.
    static func ppi(type: UInt32, value: UInt32) -> [UInt8] { u32Bytes([16, type, 12, value]) }
}

extension [NetworkAction] {
    var sent: [VMBusPacket] { compactMap { if case .send(let p) = $0 { p } else { nil } } }
    var diagnostics: [NetworkDiagnostic] { compactMap { if case .diagnostic(let d) = $0 { d } else { nil } } }
    var deliveries: [Delivery] { compactMap { if case .deliver(let d) = $0 { d } else { nil } } }
    var transfers: [RNDISTransfer] { compactMap { if case .readRNDIS(let t) = $0 { t } else { nil } } }
    var frames: [[UInt8]] { compactMap { if case .transmit(let t) = $0 { t.frame } else { nil } } }
}

/// A deterministic generator for the fuzz tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
