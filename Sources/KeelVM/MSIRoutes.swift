import KeelDevices
import KeelKVM
import KeelSystem
import Synchronization

/// Host→guest interrupts to one VP's local APIC (SynIC messages and channel signals) through
/// irqfds bound to MSI routes: one GSI per (VP, vector), installed the first time that pair
/// is used, so device threads raise an interrupt with one eventfd write. If the routing table
/// cannot be extended, interrupts fall back to `KVM_SIGNAL_MSI`.
final class MSIRoutes: Sendable {
    private struct Key: Hashable { let vp: Int; let vector: UInt8 }

    private struct State: Sendable {
        var routes = KVMInterruptRoute.defaultChipset
        var irqfds: [Key: EventFD] = [:]
        var nextGSI = KVMInterruptRoute.firstMSIGSI
        var unusable = false
    }

    /// Routes Keel installs at most (KVM allows 4096 GSIs).
    static let maximumRoutes = 1024

    private let vm: KVMVirtualMachine
    private let state = Mutex(State())
    private let log: RateLimitedLog

    init(vm: KVMVirtualMachine, log: @escaping @Sendable (String) -> Void) {
        self.vm = vm
        self.log = RateLimitedLog(sink: log)
    }

    /// The MSI that reaches `vp` (APIC id = VP index) with `vector`: fixed, edge, physical.
    static func message(vp: Int, vector: UInt8) -> (address: UInt64, data: UInt32) {
        (0xFEE0_0000 | UInt64(vp) << 12, UInt32(vector))
    }

    func inject(vp: Int, vector: UInt8) {
        if let irqfd = irqfd(Key(vp: vp, vector: vector)) {
            irqfd.signal()
            return
        }
        let msi = Self.message(vp: vp, vector: vector)
        do { try vm.signalMSI(address: msi.address, data: msi.data) } catch {
            _ = log.log("interrupt \(vector) to VP \(vp): \(error)")
        }
    }

    private func irqfd(_ key: Key) -> EventFD? {
        state.withLock { s -> EventFD? in
            if let existing = s.irqfds[key] { return existing }
            guard !s.unusable, s.irqfds.count < Self.maximumRoutes else { return nil }
            let msi = Self.message(vp: key.vp, vector: key.vector)
            let route = KVMInterruptRoute(gsi: s.nextGSI, target: .msi(address: msi.address, data: msi.data))
            do {
                let irqfd = try EventFD()
                try vm.setInterruptRouting(s.routes + [route])
                try vm.attachIRQFD(irqfd, gsi: route.gsi)
                s.routes.append(route)
                s.irqfds[key] = irqfd
                s.nextGSI += 1
                return irqfd
            } catch {
                s.unusable = true
                _ = log.log("MSI routes unavailable, using KVM_SIGNAL_MSI: \(error)")
                return nil
            }
        }
    }
}
