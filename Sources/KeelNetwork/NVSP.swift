import KeelSystem
import KeelVMBus

/// NVSP message types (the first u32 of every NVSP message) that this host handles or sends.
public enum NVSPMessageType {
    public static let initialize: UInt32 = 1
    public static let initializeComplete: UInt32 = 2
    public static let sendNDISVersion: UInt32 = 100
    public static let sendReceiveBuffer: UInt32 = 101
    public static let sendReceiveBufferComplete: UInt32 = 102
    public static let revokeReceiveBuffer: UInt32 = 103
    public static let sendSendBuffer: UInt32 = 104
    public static let sendSendBufferComplete: UInt32 = 105
    public static let revokeSendBuffer: UInt32 = 106
    public static let sendRNDISPacket: UInt32 = 107
    public static let sendRNDISPacketComplete: UInt32 = 108
    public static let sendNDISConfig: UInt32 = 125
    public static let switchDataPath: UInt32 = 129
    public static let subchannel: UInt32 = 133
}

/// NVSP protocol versions (major << 16 | minor). There is no version 3.
public enum NVSPVersion {
    public static let v1: UInt32 = 0x0000_0002
    public static let v2: UInt32 = 0x0003_0002
    public static let v4: UInt32 = 0x0004_0000
    public static let v5: UInt32 = 0x0005_0000
    public static let v6: UInt32 = 0x0006_0000
    public static let v61: UInt32 = 0x0006_0001
    /// The order in which Linux's netvsc tries them (one INIT each, min = max).
    public static let linuxProbeOrder: [UInt32] = [v61, v6, v5, v4, v2, v1]
}

/// NVSP status values carried in completions.
public enum NVSPStatus {
    public static let none: UInt32 = 0
    public static let success: UInt32 = 1
    public static let failure: UInt32 = 2
    public static let protocolTooNew: UInt32 = 3
    public static let protocolTooOld: UInt32 = 4
    public static let invalidRNDISPacket: UInt32 = 5
    public static let busy: UInt32 = 6
    public static let protocolUnsupported: UInt32 = 7
}

/// NVSP wire helpers. Every message the host sends is the full 40-byte union, which satisfies
/// every per-type minimum length Linux checks (28 for INIT/RECV_BUF completions, 12, 8).
enum NVSPMessage {
    static let size = 40
    /// The xfer_pageset_id Linux gives its receive buffer.
    static let linuxReceiveBufferID: UInt16 = 0xCAFE
    /// SEND_RNDIS_PKT's "no send-buffer section" index.
    static let noSection: UInt32 = 0xFFFF_FFFF
    static let maxMDLChainLength: UInt32 = 34

    /// Writes `fields` as a 40-byte message (in order, the rest zero) at `start` of zeroed bytes
    /// being built.
    static func store(_ fields: [UInt32], in bytes: inout [UInt8], at start: Int) {
        for (index, field) in fields.prefix(size / 4).enumerated() { bytes.storeLE32(field, at: start + 4 * index) }
    }

    /// A completion packet whose NVSP message is `type` and `status` (the rest zero), built
    /// without intermediate arrays: every guest send gets one.
    static func completion(transactionID: UInt64, type: UInt32, status: UInt32) -> VMBusPacket {
        VMBusPacket(type: .completion, transactionID: transactionID, headerLength: 0, payloadLength: size) { bytes, start in
            bytes.storeLE32(type, at: start)
            bytes.storeLE32(status, at: start + 4)
        }
    }

    /// Minimum payload length (type included) of each guest→host request this host parses.
    static func minimumLength(ofRequest type: UInt32) -> Int {
        switch type {
        case NVSPMessageType.initialize, NVSPMessageType.sendNDISVersion, NVSPMessageType.subchannel: 12
        case NVSPMessageType.sendReceiveBuffer, NVSPMessageType.sendSendBuffer: 10
        case NVSPMessageType.revokeReceiveBuffer, NVSPMessageType.revokeSendBuffer: 6
        case NVSPMessageType.sendRNDISPacket: 16
        case NVSPMessageType.sendNDISConfig: 16
        case NVSPMessageType.switchDataPath: 8
        default: 4
        }
    }

    /// The message type of the completion that answers a request of `type`.
    static func completionType(for type: UInt32) -> UInt32 {
        switch type {
        case NVSPMessageType.initialize: NVSPMessageType.initializeComplete
        case NVSPMessageType.sendReceiveBuffer: NVSPMessageType.sendReceiveBufferComplete
        case NVSPMessageType.sendSendBuffer: NVSPMessageType.sendSendBufferComplete
        case NVSPMessageType.sendRNDISPacket: NVSPMessageType.sendRNDISPacketComplete
        default: type
        }
    }
}
