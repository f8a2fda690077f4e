import KeelSystem

/// The host end of one open channel: its two rings and the way to interrupt the guest. This is
/// the whole API a VSP sees: `receive` what the guest sent, `send` replies and unsolicited
/// packets. Signalling follows hyperv-platform.md §6.5 (interrupt mask, empty-to-non-empty,
/// pending send size). A guest that corrupts its ring breaks only this channel: every later
/// call does nothing and `failure` says why.
public struct VMBusChannel: Sendable {
    /// Interrupts the guest for this channel: set the relid's event flag on the target VP.
    public typealias GuestSignal = @Sendable (_ targetVP: UInt32, _ relid: UInt32) -> Void

    public private(set) var open: VMBusChannelOpen
    private var incoming: RingBuffer
    private var outgoing: RingBuffer
    private let signalGuest: GuestSignal
    /// Packets that did not fit the host→guest ring; sent first once the guest makes room.
    private var backlog: [VMBusPacket] = []
    /// Upper bound on `backlog`; beyond it packets are dropped (a guest that never reads).
    /// Devices must not produce unsolicited packets while `backlogCount` > 0 (see
    /// `isCongested`); completions are bounded by the guest's own outstanding requests.
    public static let backlogLimit = 4096
    public private(set) var droppedPackets = 0

    /// Page addresses of a GPADL the guest created (device buffers such as netvsc's receive
    /// and send buffers), or nil for an unknown handle.
    public let gpadlPages: @Sendable (_ handle: UInt32) -> [UInt64]?

    public init(open: VMBusChannelOpen, memory: any GuestMemory, signalGuest: @escaping GuestSignal,
                gpadlPages: @escaping @Sendable (UInt32) -> [UInt64]? = { _ in nil }) throws(RingBufferError) {
        self.open = open
        incoming = try RingBuffer(pageAddresses: open.guestToHostRing, memory: memory)
        outgoing = try RingBuffer(pageAddresses: open.hostToGuestRing, memory: memory)
        self.signalGuest = signalGuest
        self.gpadlPages = gpadlPages
    }

    /// Why the channel stopped working (a guest-corrupted ring), or nil.
    public var failure: RingBufferError? { incoming.failure ?? outgoing.failure }

    /// Moves the channel's interrupts to another VP (MODIFYCHANNEL).
    public mutating func retarget(to vp: UInt32) { open.targetVP = vp }

    /// Drains the guest→host ring: the interrupt mask is held while reading and cleared at the
    /// end with a re-check, so no guest signal is lost. Also retries the backlog (the guest
    /// signals when it frees space we asked for). With `limit` packets read, the mask stays set.
    public mutating func receive(limit: Int = 256) -> [VMBusPacket] {
        var packets = receiveMasked(limit: limit)
        while packets.count < limit, unmask() { packets += receiveMasked(limit: limit - packets.count) }
        return packets
    }

    /// Reads up to `limit` packets with the interrupt mask set and leaves it set: the guest does
    /// not signal while the host is going to look again anyway. End with `unmask()`.
    public mutating func receiveMasked(limit: Int) -> [VMBusPacket] {
        flushBacklog()
        var packets: [VMBusPacket] = []
        do throws(RingBufferError) {
            try incoming.setInterruptMask(true)
            while packets.count < limit, let result = try incoming.readPacket() {
                if result.signalWriter { signalGuest(open.targetVP, open.relid) }
                packets.append(result.packet)
            }
        } catch {
            // The ring latched the failure; the caller sees it in `failure`.
        }
        return packets
    }

    /// Clears the interrupt mask, then re-checks: true if packets arrived in the meantime (read
    /// them; no signal from the guest is coming for them).
    public mutating func unmask() -> Bool {
        do {
            return try incoming.finishDraining()
        } catch {
            return false
        }
    }

    /// Queues `packet` for the guest; returns false if it was dropped (ring broken or the
    /// backlog full because the guest does not read).
    @discardableResult
    public mutating func send(_ packet: VMBusPacket) -> Bool {
        guard failure == nil else { return false }
        if !backlog.isEmpty { flushBacklog() }
        if backlog.isEmpty, write(packet) { return true }
        guard failure == nil, backlog.count < Self.backlogLimit else {
            droppedPackets += 1
            return false
        }
        backlog.append(packet)
        return true
    }

    /// While set, the interrupt a `send` owes the guest is held until `releaseSignal()`: the I/O
    /// loop holds it while it works through a burst, so the guest is interrupted once with all
    /// of it in the ring rather than at the first packet (on a shared CPU, that interrupt's vCPU
    /// wake-up can preempt the loop and take the burst one packet at a time).
    public var holdsSignals = false
    private var signalHeld = false

    /// Raises the interrupt held while `holdsSignals` was set, if one is owed.
    public mutating func releaseSignal() {
        guard signalHeld else { return }
        signalHeld = false
        signalGuest(open.targetVP, open.relid)
    }

    /// Number of packets waiting for room in the host→guest ring.
    public var backlogCount: Int { backlog.count }

    /// The guest is not reading fast enough: unsolicited traffic (received frames) should wait.
    public var isCongested: Bool { !backlog.isEmpty }

    private mutating func flushBacklog() {
        while let first = backlog.first, write(first) { backlog.removeFirst() }
    }

    /// One packet onto the ring; false when it does not fit (pending send size is then set).
    private mutating func write(_ packet: VMBusPacket) -> Bool {
        do {
            switch try outgoing.writePacket(packet) {
            case .written(let signal):
                if signal {
                    if holdsSignals { signalHeld = true } else { signalGuest(open.targetVP, open.relid) }
                }
                return true
            case .full:
                return false
            }
        } catch {
            return false
        }
    }
}

/// A VMBus device (VSP): the host side of one channel's protocol. The VMBus I/O loop owns the
/// value and calls it on one thread; it never sees KVM. Time-driven work happens in `tick`,
/// which the loop calls at least every `VMBusDeviceTiming.tickInterval` and whenever the host
/// pokes the device (e.g. a shutdown request).
public protocol VMBusDevice: Sendable {
    /// What the device offers on the bus.
    var offer: VMBusChannelOffer { get }
    /// The guest opened the channel (also after a reconnect); host-first protocols send here.
    mutating func channelOpened(_ channel: inout VMBusChannel)
    /// A packet arrived from the guest.
    mutating func packetReceived(_ packet: VMBusPacket, on channel: inout VMBusChannel)
    /// Periodic work and host requests.
    mutating func tick(_ channel: inout VMBusChannel)
    /// The channel closed (guest close, teardown, rescind, unload or reconnect).
    mutating func channelClosed()
    /// Sub-channel devices this device wants offered (multi-queue devices, after the guest
    /// asked for them); the loop takes them after each call above and offers them.
    mutating func takeNewSubchannels() -> [any VMBusDevice]
    /// Host descriptors (e.g. a TAP) whose readability should wake the loop for a `tick`.
    var pollDescriptors: [Int32] { get }
    /// Whether the loop, after a drain that found work, yields its CPU once with the ring still
    /// masked before looking again: a guest vCPU sharing that CPU then queues more per signal.
    /// The loop also holds the channel's interrupts to the guest while it works (`holdsSignals`),
    /// raising one before the yield and one at the end of its pass.
    /// Good for streaming devices (network: a third of the signals per MB in the rig); costly
    /// for one-request-at-a-time ones (storage at queue depth 1 lost ~20 % IOPS), so off by default.
    var batchesGuestSignals: Bool { get }
}

extension VMBusDevice {
    public mutating func takeNewSubchannels() -> [any VMBusDevice] { [] }
    public var pollDescriptors: [Int32] { [] }
    public var batchesGuestSignals: Bool { false }
}

public enum VMBusDeviceTiming {
    /// Longest time between two `tick` calls on an open channel.
    public static let tickIntervalMilliseconds: Int32 = 250
}
