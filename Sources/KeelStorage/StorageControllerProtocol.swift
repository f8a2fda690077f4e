import KeelVMBus

/// The storvsp side of one SCSI controller's channels, as a pure state machine: the
/// initialization handshake on the primary channel (BEGIN → QUERY_PROTOCOL_VERSION →
/// QUERY_PROPERTIES → END), sub-channel creation, resets, and EXECUTE_SRB on any channel.
/// Every packet that asks for a completion gets exactly one (an unanswered request hangs the
/// guest); malformed or out-of-order packets are answered with an error status.
public struct StorageControllerProtocol: Sendable {
    /// What the host offers.
    public struct Configuration: Sendable, Equatable {
        /// Protocol versions accepted (Linux asks 6.2, then 6.0, then 5.1).
        public var acceptedVersions: Set<UInt16>
        /// max_transfer_bytes, rounded down to 4 KiB (at least 4 KiB).
        public var maxTransferBytes: UInt32
        /// Sub-channels the guest may ask for; 0 = single channel (multi-channel not advertised).
        public var maxSubchannels: UInt16

        public init(acceptedVersions: Set<UInt16> = [VStorVersion.threshold, VStorVersion.blue, VStorVersion.win8],
                    maxTransferBytes: UInt32 = 0x40000, maxSubchannels: UInt16 = 0) {
            self.acceptedVersions = acceptedVersions
            self.maxTransferBytes = max(4096, maxTransferBytes & ~0xFFF)
            self.maxSubchannels = maxSubchannels
        }
    }

    /// Progress of the primary channel's handshake: SRBs are served only when `.ready`.
    public enum Phase: Sendable, Equatable {
        case awaitingBegin, initializing, ready
    }

    public let configuration: Configuration
    public private(set) var phase: Phase = .awaitingBegin
    public private(set) var negotiatedVersion: UInt16?
    /// Sub-channels offered so far (indices 1...n).
    public private(set) var subchannelsOffered = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The guest (re)opened the primary channel: start over.
    public mutating func reset() {
        phase = .awaitingBegin
        negotiatedVersion = nil
        subchannelsOffered = 0
    }

    /// Largest number of pages a data buffer may name: a maximal transfer that starts mid-page.
    public var maxBufferPages: Int { Int(configuration.maxTransferBytes) / 4096 + 1 }

    /// Handles one packet from the primary channel.
    public mutating func receive(_ packet: VMBusPacket) -> StorageAction {
        guard let vstor = decode(packet) else { return reply(packet, status: NTStatus.invalidParameter) }
        switch VStorOperation(rawValue: vstor.operation) {
        case .beginInitialization:
            guard phase == .awaitingBegin else { return reply(packet, status: NTStatus.invalidDeviceState) }
            phase = .initializing
            return reply(packet)
        case .queryProtocolVersion:
            guard phase == .initializing else { return reply(packet, status: NTStatus.invalidDeviceState) }
            let version = vstor.protocolVersion
            guard configuration.acceptedVersions.contains(version) else {
                return reply(packet, status: NTStatus.revisionMismatch, body: Array(vstor.body.prefix(4)))
            }
            negotiatedVersion = version
            return reply(packet, body: Array(vstor.body.prefix(4)))
        case .queryProperties:
            guard phase == .initializing, negotiatedVersion != nil else {
                return reply(packet, status: NTStatus.invalidDeviceState)
            }
            let multi = configuration.maxSubchannels > 0
            let properties = VStorChannelProperties(maxChannelCount: configuration.maxSubchannels,
                                                    supportsMultiChannel: multi,
                                                    maxTransferBytes: configuration.maxTransferBytes)
            return reply(packet, body: properties.encode())
        case .endInitialization:
            guard phase == .initializing, negotiatedVersion != nil else {
                return reply(packet, status: NTStatus.invalidDeviceState)
            }
            phase = .ready
            return reply(packet)
        case .createSubChannels:
            return createSubchannels(packet, requested: Int(vstor.subChannelCount))
        case .resetLUN, .resetAdapter, .resetBus:
            guard packet.completionRequested else { return .none }
            return .completeAfterOutstandingIO(completion(packet, status: NTStatus.success, body: []))
        case .executeSRB:
            return executeSRB(packet, vstor: vstor)
        default:
            return reply(packet, status: NTStatus.invalidParameter)
        }
    }

    /// Handles one packet from a sub-channel: only EXECUTE_SRB is valid there.
    public func receiveOnSubchannel(_ packet: VMBusPacket) -> StorageAction {
        guard let vstor = decode(packet) else { return reply(packet, status: NTStatus.invalidParameter) }
        guard vstor.operation == VStorOperation.executeSRB.rawValue else {
            return reply(packet, status: NTStatus.invalidDeviceState)
        }
        return executeSRB(packet, vstor: vstor)
    }

    private mutating func createSubchannels(_ packet: VMBusPacket, requested: Int) -> StorageAction {
        guard phase == .ready else { return reply(packet, status: NTStatus.invalidDeviceState) }
        guard configuration.maxSubchannels > 0, requested > 0 else { return reply(packet, status: NTStatus.invalidParameter) }
        let target = min(requested, Int(configuration.maxSubchannels))
        let first = subchannelsOffered + 1
        let count = max(0, target - subchannelsOffered)
        subchannelsOffered += count
        let done = packet.completionRequested ? completion(packet, status: NTStatus.success, body: []) : nil
        return .offerSubchannels(firstIndex: first, count: count, completion: done)
    }

    private func executeSRB(_ packet: VMBusPacket, vstor: VStorPacket) -> StorageAction {
        var buffer: GPADirectBuffer?
        var bufferError = false
        if packet.rawType == VMBusPacketType.dataUsingGPADirect.rawValue {
            do {
                buffer = try GPADirectBuffer(packet: packet, maxPages: maxBufferPages)
            } catch {
                bufferError = true
            }
        }
        let request = StorageRequest(transactionID: packet.transactionID, completionRequested: packet.completionRequested,
                                     srb: SCSIRequest(decoding: vstor.body), buffer: buffer,
                                     replySize: replySize(packet))
        guard phase == .ready else {
            let failed = SCSICompletion(srbStatus: SRBStatus.error, scsiStatus: SCSIStatus.good)
            return request.completionPacket(failed, status: NTStatus.invalidDeviceState).map { .reply($0) } ?? .none
        }
        guard !bufferError else {
            return request.completionPacket(.invalidRequest, status: NTStatus.invalidParameter).map { .reply($0) } ?? .none
        }
        return .execute(request)
    }

    /// The vstor packet of an in-band or GPA-direct packet; nil if it is of another type or too short.
    private func decode(_ packet: VMBusPacket) -> VStorPacket? {
        guard packet.rawType == VMBusPacketType.dataInBand.rawValue
                || packet.rawType == VMBusPacketType.dataUsingGPADirect.rawValue else { return nil }
        return VStorPacket(decoding: payload(packet))
    }

    private func payload(_ packet: VMBusPacket) -> [UInt8] {
        guard packet.hasValidDataOffset else { return [] }
        return packet.payload
    }

    /// Completions match the request's size (at least 48, at most 64); 64 once Win8+ is agreed.
    private func replySize(_ packet: VMBusPacket) -> Int {
        if let version = negotiatedVersion, version >= VStorVersion.win8 { return VStorPacket.size }
        return min(max(payload(packet).count, VStorPacket.legacySize), VStorPacket.size)
    }

    private func completion(_ packet: VMBusPacket, status: UInt32, body: [UInt8]) -> VMBusPacket {
        let vstor = VStorPacket(operation: .completeIO, status: status, body: body)
        return VMBusPacket(type: .completion, transactionID: packet.transactionID,
                           payload: vstor.encode(size: replySize(packet)))
    }

    private func reply(_ packet: VMBusPacket, status: UInt32 = NTStatus.success, body: [UInt8] = []) -> StorageAction {
        packet.completionRequested ? .reply(completion(packet, status: status, body: body)) : .none
    }
}
