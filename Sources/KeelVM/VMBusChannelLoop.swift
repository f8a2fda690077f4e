import KeelDevices
import KeelSystem
import KeelVMBus
import Synchronization

/// The VMBus I/O thread: runs every VMBus device (VSP) of the partition. Guest signals arrive
/// on each open channel's doorbell eventfd, which KVM signals in-kernel (ioeventfd) when the
/// guest's hypercall page does HvSignalEvent; the loop then drains the channel's ring and
/// lets the device answer. Devices also get a `tick` at least every 250 ms.
///
/// Channel state is behind one mutex, which the VP threads also take to open and close
/// channels: a close returns only after the loop has stopped touching the rings, so the guest
/// never gets its GPADL back while the host still writes to it.
final class VMBusChannelLoop: Sendable {
    private struct OpenChannel: Sendable {
        var channel: VMBusChannel
        let doorbell: EventFD
        var failureLogged = false
    }

    private struct State: Sendable {
        var devices: [UInt32: any VMBusDevice] = [:]
        /// Open channels. Add and remove them with `opened`/`closed`, which keep the two fields
        /// below in step; the loop takes entries out and puts them back while it runs them.
        var open: [UInt32: OpenChannel] = [:]
        /// Open relids in order, and a counter bumped when they change (the loop's poll list).
        private(set) var openRelids: [UInt32] = []
        private(set) var generation = 0
        var stopping = false

        mutating func opened(_ channel: OpenChannel, relid: UInt32) {
            open[relid] = channel
            openRelids = open.keys.sorted()
            generation += 1
        }

        mutating func closed(relid: UInt32) -> OpenChannel? {
            guard let channel = open.removeValue(forKey: relid) else { return nil }
            openRelids = open.keys.sorted()
            generation += 1
            return channel
        }
    }

    /// What the loop waits on: the wake eventfd, each open channel's doorbell, device descriptors.
    private enum PollList {
        case stop
        case unchanged
        case rebuilt(generation: Int, descriptors: [Int32])
    }

    private let state = Mutex(State())
    /// Packets taken from a ring before the device handles them.
    static let batchSize = 64
    private let wake: EventFD
    private let log: RateLimitedLog
    private let thread = Mutex<NamedThread?>(nil)
    private let name: String

    private let offerSubchannels: @Sendable ([any VMBusDevice]) -> Void

    /// - Parameter offerSubchannels: offers sub-channel devices a device asked for; called on
    ///   the loop thread without the loop's lock held.
    init(name: String, log: RateLimitedLog,
         offerSubchannels: @escaping @Sendable ([any VMBusDevice]) -> Void) throws(SystemError) {
        wake = try EventFD(nonBlocking: true)
        self.name = name
        self.log = log
        self.offerSubchannels = offerSubchannels
    }

    /// Registers the device behind relid `relid` (before or after the guest connects).
    func register(_ device: any VMBusDevice, relid: UInt32) {
        state.withLock { $0.devices[relid] = device }
    }

    /// The guest opened a channel: the device starts (host-first protocols send at once).
    func open(_ channel: VMBusChannel, doorbell: EventFD) {
        let relid = channel.open.relid
        state.withLock { s in
            guard var device = s.devices[relid] else { return }
            var open = OpenChannel(channel: channel, doorbell: doorbell)
            device.channelOpened(&open.channel)
            s.devices[relid] = device
            s.opened(open, relid: relid)
        }
        wake.signal()
    }

    /// The channel closed; returns its doorbell (for the caller to detach from KVM) once the
    /// loop no longer touches the rings.
    func close(relid: UInt32) -> EventFD? {
        state.withLock { s in
            guard let open = s.closed(relid: relid) else { return nil }
            s.devices[relid]?.channelClosed()
            return open.doorbell
        }
    }

    /// Rings an open channel's doorbell (slow path: a signal-port write that no ioeventfd
    /// matched). False when the channel is not open.
    func ring(relid: UInt32) -> Bool {
        let doorbell = state.withLock { $0.open[relid]?.doorbell }
        doorbell?.signal()
        return doorbell != nil
    }

    /// MODIFYCHANNEL: interrupts for `relid` go to `vp` from now on.
    func retarget(relid: UInt32, to vp: UInt32) {
        state.withLock { $0.open[relid]?.channel.retarget(to: vp) }
    }

    /// Makes the loop run its devices' `tick` now (after a host request such as shutdown).
    func poke() { wake.signal() }

    func start() throws(SystemError) {
        let t = try NamedThread(name: name) { [self] in run() }
        thread.withLock { $0 = t }
    }

    func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
        thread.withLock { $0 }?.join()
    }

    private func run() {
        var descriptors: [Int32] = []
        var generation = -1
        while true {
            // The poll list is rebuilt only when channels opened or closed since the last round.
            let list = state.withLock { s -> PollList in
                if s.stopping { return .stop }
                if s.generation == generation { return .unchanged }
                let doorbells = s.openRelids.compactMap { s.open[$0]?.doorbell.rawValue }
                let others = s.openRelids.flatMap { s.devices[$0]?.pollDescriptors ?? [] }
                return .rebuilt(generation: s.generation, descriptors: [wake.rawValue] + doorbells + others)
            }
            switch list {
            case .stop: return
            case .unchanged: break
            case .rebuilt(let g, let d): (generation, descriptors) = (g, d)
            }
            let readable = Poller.waitReadable(descriptors, timeoutMilliseconds: VMBusDeviceTiming.tickIntervalMilliseconds)
                .map { descriptors[$0] }
            // Eventfds are reset only when poll saw them set: a read of an unset one is a wasted
            // system call (EAGAIN), and poll is level-triggered, so a signal that lands after it
            // returned wakes the next round.
            if readable.contains(wake.rawValue) { _ = wake.wait() }
            serviceChannels(signalled: readable)
        }
    }

    /// Hands `device` every packet in the channel's ring, interrupt mask left set; returns how many.
    private static func drain(_ channel: inout VMBusChannel, into device: inout any VMBusDevice) -> Int {
        var count = 0
        var batch: [VMBusPacket]
        repeat {
            batch = channel.receiveMasked(limit: batchSize)
            for packet in batch { device.packetReceived(packet, on: &channel) }
            count += batch.count
        } while batch.count == batchSize && channel.failure == nil
        return count
    }

    /// Drains every open channel, hands the packets to its device, then ticks the device.
    /// `signalled`: the descriptors poll found readable (doorbells among them are reset).
    private func serviceChannels(signalled: [Int32]) {
        let subchannels = state.withLock { s -> [any VMBusDevice] in
            var subchannels: [any VMBusDevice] = []
            for relid in s.openRelids {
                // Taken out of the tables while they run, so each is uniquely owned: mutating a
                // copy that the table still shared would copy the device's buffers every time.
                guard var open = s.open.removeValue(forKey: relid) else { continue }
                guard var device = s.devices.removeValue(forKey: relid) else {
                    s.open[relid] = open
                    continue
                }
                if signalled.contains(open.doorbell.rawValue) { _ = open.doorbell.wait() }
                if open.channel.failure == nil {
                    // Drain completely: the guest signals only when the ring goes from empty to
                    // non-empty. For devices that batch, the mask stays set after a drain that
                    // found work while this thread yields once: a vCPU sharing its CPU queues more
                    // without signalling (each signal is an exit); the second drain takes it all.
                    // Their interrupts to the guest are held for the same reason and raised
                    // before the yield and at the end.
                    let batches = device.batchesGuestSignals
                    open.channel.holdsSignals = batches
                    if Self.drain(&open.channel, into: &device) > 0, batches {
                        open.channel.releaseSignal()
                        NamedThread.yieldProcessor()
                        _ = Self.drain(&open.channel, into: &device)
                    }
                    while open.channel.failure == nil, open.channel.unmask() { _ = Self.drain(&open.channel, into: &device) }
                    device.tick(&open.channel)
                    open.channel.releaseSignal()
                    open.channel.holdsSignals = false
                }
                if let failure = open.channel.failure, !open.failureLogged {
                    open.failureLogged = true
                    log.log("VMBus channel \(relid) stopped: \(failure)")
                }
                subchannels += device.takeNewSubchannels()
                s.open[relid] = open
                s.devices[relid] = device
            }
            return subchannels
        }
        if !subchannels.isEmpty { offerSubchannels(subchannels) }
    }
}
