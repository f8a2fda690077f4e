import KeelDevices
import KeelHyperV
import KeelKVM
import KeelSystem
import KeelVMBus
import Synchronization

/// The root partition's end of VMBus: the channel-management server fed by HvPostMessage, its
/// replies delivered through the SynIC, and the open channels wired to their devices. Guest
/// signals for a channel take the in-kernel path: at open, the channel's connection id gets an
/// ioeventfd on the hypercall page's signal port, so HvSignalEvent wakes the VMBus I/O thread
/// without a user-space exit.
final class VMBusHost: Sendable {
    private let server: Mutex<VMBusServer>
    private let synic: SynIC
    private let inject: @Sendable (SynICInterrupt) -> Void
    private let vm: KVMVirtualMachine
    private let memory: GuestRAM
    private let signalEventPort: UInt16
    /// The loop that runs the integration services and other light devices.
    private let sharedLoop: VMBusChannelLoop
    /// Every loop, and which loop runs each relid's device.
    private let loops: Mutex<(all: [VMBusChannelLoop], byRelid: [UInt32: VMBusChannelLoop], started: Bool)>
    private let log: @Sendable (String) -> Void
    private let guestLog: RateLimitedLog
    /// Page lists of complete GPADLs, for devices' own buffers. A leaf lock: devices read it
    /// from their I/O threads while holding their loop's lock.
    private let gpadlPages = GPADLPages()

    init(vm: KVMVirtualMachine, memory: GuestRAM, synic: SynIC, vpCount: Int, signalEventPort: UInt8,
         inject: @escaping @Sendable (SynICInterrupt) -> Void, log: @escaping @Sendable (String) -> Void) throws {
        self.vm = vm
        self.memory = memory
        self.synic = synic
        self.inject = inject
        self.signalEventPort = UInt16(signalEventPort)
        self.log = log
        guestLog = RateLimitedLog(sink: log)
        server = Mutex(VMBusServer(configuration: .init(vpCount: UInt32(vpCount)), memory: memory))
        // The light devices on the shared loop (integration services) have no sub-channels.
        let shared = try VMBusChannelLoop(name: "keel-vmbus", log: guestLog) { [guestLog] _ in
            _ = guestLog.log("VMBus: sub-channels requested by a device on the shared thread; ignored")
        }
        sharedLoop = shared
        loops = Mutex((all: [shared], byRelid: [:], started: false))
    }

    /// Offers sub-channel devices asked for by a running device, each on its own thread.
    private func offer(_ devices: [any VMBusDevice], thread base: String) {
        for device in devices {
            do {
                try add(device, ownThread: "\(base)-sc\(device.offer.subchannelIndex)")
            } catch {
                log("VMBus: cannot offer a sub-channel: \(error)")
            }
        }
    }

    /// Offers `device` on the bus (when the guest asks for offers). With `ownThread`, the device
    /// gets its own I/O thread (storage, network); otherwise it shares the integration services'.
    func add(_ device: any VMBusDevice, ownThread name: String? = nil) throws {
        let loop = try name.map { thread in
            try VMBusChannelLoop(name: thread, log: guestLog) { [weak self] in self?.offer($0, thread: thread) }
        } ?? sharedLoop
        // Register with the loop before the offer can reach the guest.
        let running = loops.withLock { $0.started }
        if loop !== sharedLoop, running { try loop.start() }
        try server.withLock { s in
            let (relid, output) = try s.addChannel(device.offer)
            loop.register(device, relid: relid)
            loops.withLock { l in
                if loop !== sharedLoop { l.all.append(loop) }
                l.byRelid[relid] = loop
            }
            apply(output.events)
            post(output.messages)
        }
    }

    func start() throws(SystemError) {
        for loop in loops.withLock({ l in l.started = true; return l.all }) { try loop.start() }
    }

    func stop() {
        for loop in loops.withLock({ $0.all }) { loop.stop() }
    }

    /// Wakes the devices (e.g. after a host request was queued for one of them).
    func pokeDevices() {
        for loop in loops.withLock({ $0.all }) { loop.poke() }
    }

    private func loopFor(relid: UInt32) -> VMBusChannelLoop? { loops.withLock { $0.byRelid[relid] } }

    // MARK: Hypercall receivers (VP threads)

    /// HvPostMessage: a channel-management message from the guest.
    func postMessage(_ message: PostedMessage) -> HvStatus {
        guard message.messageType == SynICMessage.vmbusChannelMessage else {
            _ = guestLog.log("HvPostMessage with message type \(message.messageType) refused")
            return .invalidParameter
        }
        return server.withLock { s in
            guard s.acceptsMessages(onConnectionID: message.connectionID) else { return .invalidConnectionID }
            let output = s.receive(message.payload, connectionID: message.connectionID)
            apply(output.events)
            post(output.messages)
            return .success
        }
    }

    /// HvSignalEvent that reached user space (no ioeventfd matched the connection id).
    func signalEvent(_ request: SignalEventRequest) -> HvStatus {
        let relid = request.connectionID & 0xFFF
        guard request.connectionID == VMBusServer.signalConnectionID(relid: relid),
              let loop = loopFor(relid: relid), loop.ring(relid: relid) else { return .invalidConnectionID }
        return .success
    }

    // MARK: Server output

    private func post(_ messages: [VMBusOutgoingMessage]) {
        for m in messages {
            do {
                let message = try SynICMessage(messageType: VMBusOutgoingMessage.synicMessageType, payload: m.payload)
                let result = synic.post(message, vp: Int(m.targetVP), sint: Int(m.sint))
                if let irq = result.interrupt { inject(irq) }
                if result.disposition == .dropped || result.disposition == .invalidTarget {
                    _ = guestLog.log("VMBus message \(m.message.type) to VP \(m.targetVP) lost: \(result.disposition)")
                }
            } catch {
                log("VMBus: cannot post \(m.message.type): \(error)")
            }
        }
    }

    private func apply(_ events: [VMBusEvent]) {
        for event in events {
            switch event {
            case let .connected(version, targetVP, _):
                log("VMBus: guest connected with protocol \(version), messages to VP \(targetVP)")
            case .unloaded:
                log("VMBus: guest unloaded VMBus")
            case let .channelOpened(open):
                openChannel(open)
            case let .channelClosed(relid, _):
                closeChannel(relid: relid)
            case let .channelRetargeted(relid, vp):
                loopFor(relid: relid)?.retarget(relid: relid, to: vp)
            case let .diagnostic(d):
                _ = guestLog.log("VMBus: \(d.message)")
            case .reset:
                synic.discardQueuedMessages(sint: Int(VMBusServer.defaultSINT))
            case .gpadlCreated(let gpadl):
                if let pages = gpadl.wholePageAddresses { gpadlPages.set(gpadl.handle, pages) }
            case .gpadlRemoved(let handle):
                gpadlPages.set(handle, nil)
            case .relidReleased, .transportConnectRequest:
                break
            }
        }
    }

    private func openChannel(_ open: VMBusChannelOpen) {
        let synic = self.synic, inject = self.inject, gpadls = self.gpadlPages
        guard let loop = loopFor(relid: open.relid) else { return }
        do {
            let channel = try VMBusChannel(open: open, memory: memory, signalGuest: { vp, relid in
                if case .signalled(let irq?) = synic.signalEvent(vp: Int(vp), sint: Int(VMBusServer.defaultSINT), flag: Int(relid)) {
                    inject(irq)
                }
            }, gpadlPages: { gpadls.pages($0) })
            let doorbell = try EventFD(nonBlocking: true)
            try vm.attachPortIOEventFD(doorbell, port: signalEventPort, length: 4, match: UInt64(open.signalConnectionID))
            loop.open(channel, doorbell: doorbell)
        } catch {
            _ = guestLog.log("VMBus channel \(open.relid) cannot start: \(error)")
        }
    }

    private func closeChannel(relid: UInt32) {
        guard let doorbell = loopFor(relid: relid)?.close(relid: relid) else { return }
        let connection = VMBusServer.signalConnectionID(relid: relid)
        do {
            try vm.detachPortIOEventFD(doorbell, port: signalEventPort, length: 4, match: UInt64(connection))
        } catch {
            log("VMBus channel \(relid): \(error)")
        }
    }
}

/// Page lists of the guest's complete GPADLs by handle (a leaf lock, see `VMBusHost`).
private final class GPADLPages: Sendable {
    private let table = Mutex<[UInt32: [UInt64]]>([:])
    func set(_ handle: UInt32, _ pages: [UInt64]?) { table.withLock { $0[handle] = pages } }
    func pages(_ handle: UInt32) -> [UInt64]? { table.withLock { $0[handle] } }
}
