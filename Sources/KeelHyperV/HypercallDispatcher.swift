import KeelSystem

/// Executes hypercalls arriving on the hypercall port (design §3): validates the control word,
/// copies inputs out of guest memory, and hands HvPostMessage / HvSignalEvent to the receivers.
/// Everything else answers HV_STATUS_INVALID_HYPERCALL_CODE. Stateless apart from its
/// receivers, so any VP thread may call it concurrently.
public final class HypercallDispatcher: Sendable {
    /// Receives a validated HvPostMessage. Return `.success` when queued,
    /// `.invalidConnectionID` for an unknown connection, `.insufficientBuffers` for back-pressure
    /// (Linux retries). Must be short: it runs on the VP thread.
    public typealias PostMessageReceiver = @Sendable (PostedMessage) -> HvStatus
    /// Receives a validated HvSignalEvent. Return `.success` or `.invalidConnectionID`.
    public typealias SignalEventReceiver = @Sendable (SignalEventRequest) -> HvStatus

    /// Size of the HvPostMessage input block.
    public static let postMessageInputSize = 256
    static let signalEventInputSize = 8
    static let maxEventFlag = 2047

    public let memory: any GuestMemory
    private let postMessage: PostMessageReceiver
    private let signalEvent: SignalEventReceiver

    public init(memory: any GuestMemory, postMessage: @escaping PostMessageReceiver,
                signalEvent: @escaping SignalEventReceiver) {
        self.memory = memory
        self.postMessage = postMessage
        self.signalEvent = signalEvent
    }

    /// Runs one hypercall for VP `vp`; put `result.rax` into RAX and resume with RIP unchanged.
    public func execute(_ registers: HypercallRegisters, vp: Int) -> HypercallResult {
        HypercallResult(status: status(of: registers, vp: vp))
    }

    /// A write to the signal-event port that no ioeventfd matched: EAX is the connection id.
    public func signalEventPortWrite(connectionID: UInt32, vp: Int) -> HvStatus {
        guard connectionID >> 24 == 0 else { return .invalidHypercallInput }
        return signalEvent(SignalEventRequest(vp: vp, connectionID: connectionID))
    }

    private func status(of registers: HypercallRegisters, vp: Int) -> HvStatus {
        guard registers.cpl == 0 else { return .accessDenied }
        let control = HypercallControl(rawValue: registers.rcx)
        let code = control.callCode
        guard code == HypercallCode.postMessage || code == HypercallCode.signalEvent else {
            return .invalidHypercallCode
        }
        // Both calls are simple (non-rep) calls without a variable header; we are not nested.
        guard !control.hasReservedBitsSet, !control.isNested, control.repCount == 0,
              control.repStartIndex == 0, control.variableHeaderSize == 0 else { return .invalidHypercallInput }
        return code == HypercallCode.postMessage
            ? doPostMessage(control, registers, vp: vp)
            : doSignalEvent(control, registers, vp: vp)
    }

    /// HvPostMessage (0x5C), slow form only.
    private func doPostMessage(_ control: HypercallControl, _ registers: HypercallRegisters, vp: Int) -> HvStatus {
        guard !control.isFast else { return .invalidHypercallCode }
        let input: [UInt8]
        switch readInput(at: registers.rdx, count: Self.postMessageInputSize) {
        case .failed(let status): return status
        case .bytes(let bytes): input = bytes
        }
        let connection = UInt32(input.loadLE(at: 0, count: 4))
        let reserved = input.loadLE(at: 4, count: 4)
        let messageType = UInt32(input.loadLE(at: 8, count: 4))
        let size = Int(input.loadLE(at: 12, count: 4))
        guard connection >> 24 == 0, reserved == 0 else { return .invalidHypercallInput }
        guard messageType != 0, messageType < 0x8000_0000 else { return .invalidParameter }
        guard size <= SynICMessage.maxPayloadSize else { return .invalidHypercallInput }
        return postMessage(PostedMessage(vp: vp, connectionID: connection, messageType: messageType,
                                         payload: Array(input[16..<16 + size])))
    }

    /// HvSignalEvent (0x5D): fast (RDX) or slow (8-byte block at RDX).
    private func doSignalEvent(_ control: HypercallControl, _ registers: HypercallRegisters, vp: Int) -> HvStatus {
        let parameter: UInt64
        if control.isFast {
            parameter = registers.rdx
        } else {
            switch readInput(at: registers.rdx, count: Self.signalEventInputSize) {
            case .failed(let status): return status
            case .bytes(let bytes): parameter = bytes.loadLE(at: 0, count: 8)
            }
        }
        let connection = UInt32(truncatingIfNeeded: parameter)
        let flag = UInt16(truncatingIfNeeded: parameter >> 32)
        guard connection >> 24 == 0, parameter >> 48 == 0 else { return .invalidHypercallInput }
        guard flag <= Self.maxEventFlag else { return .invalidParameter }
        return signalEvent(SignalEventRequest(vp: vp, connectionID: connection, flagNumber: flag))
    }

    /// Copies an input block: 8-byte aligned, within one page, inside guest memory.
    private func readInput(at gpa: UInt64, count: Int) -> InputBlock {
        guard gpa & 7 == 0, (gpa & 0xFFF) + UInt64(count) <= 4096 else { return .failed(.invalidAlignment) }
        do {
            return .bytes(try memory.read(at: gpa, count: count))
        } catch {
            return .failed(.invalidParameter)
        }
    }

    private enum InputBlock {
        case bytes([UInt8])
        case failed(HvStatus)
    }
}
