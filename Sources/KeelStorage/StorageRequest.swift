import KeelSystem
import KeelVMBus

/// An EXECUTE_SRB the controller accepted: the SRB, its data buffer (GPA-direct packets) and what
/// is needed to answer it. Completing needs no controller state, so requests from any channel can
/// be completed on any thread; the completion goes back on the channel the request came from.
public struct StorageRequest: Sendable, Equatable {
    public let transactionID: UInt64
    public let completionRequested: Bool
    public let srb: SCSIRequest
    /// The guest's data buffer; nil for SRBs sent in-band (no data).
    public let buffer: GPADirectBuffer?
    /// Size of the vstor packet in the completion (64 once a Win8+ version is agreed).
    public let replySize: Int

    /// Bytes that may move: the smaller of the buffer size and the SRB's data_transfer_length.
    public var bufferLength: Int { min(buffer?.totalBytes ?? 0, Int(srb.dataTransferLength)) }

    /// The guest-physical segments of the first `length` bytes of the buffer (where data-in bytes
    /// go, or where write / UNMAP data comes from); nil if the buffer is shorter. Empty for 0.
    public func guestSegments(length: Int) -> [GuestSegment]? {
        guard length > 0 else { return length == 0 ? [] : nil }
        guard length <= bufferLength else { return nil }
        return buffer?.segments(from: 0, length: length)
    }

    /// The completion packet: COMPLETE_IO with the SRB echoed (path, target, LUN) and the response
    /// fields filled in. `status` is the NTSTATUS (0 also for SCSI-level errors, which travel in
    /// the SRB). Nil when the guest did not ask for a completion.
    public func completionPacket(_ completion: SCSICompletion, status: UInt32 = NTStatus.success) -> VMBusPacket? {
        guard completionRequested else { return nil }
        let transferred = min(completion.dataTransferLength, UInt32(clamping: bufferLength))
        let body = srb.response(srbStatus: completion.srbStatus, scsiStatus: completion.scsiStatus,
                                sense: completion.sense, transferred: transferred)
        let packet = VStorPacket(operation: .completeIO, status: status, body: body)
        return VMBusPacket(type: .completion, transactionID: transactionID, payload: packet.encode(size: replySize))
    }
}

/// What the caller does with one guest packet on a storage channel.
public enum StorageAction: Sendable, Equatable {
    /// Nothing to send (the guest asked for no completion).
    case none
    /// Write this completion to the guest.
    case reply(VMBusPacket)
    /// Write the completion (if one was requested), then offer sub-channels with indices
    /// `firstIndex ..< firstIndex + count` (same class and instance GUID as the primary).
    case offerSubchannels(firstIndex: Int, count: Int, completion: VMBusPacket?)
    /// A reset: write the completion once all outstanding I/O of the controller has completed.
    case completeAfterOutstandingIO(VMBusPacket)
    /// Run the SRB (`SCSITargetMap.plan`), then send `request.completionPacket(...)`.
    case execute(StorageRequest)
}
