/// A channel the host offers to the guest: what a device registers with the VMBus server.
/// The server assigns the relid and signal connection id; offers never use monitor pages.
public struct VMBusChannelOffer: Sendable, Equatable {
    public var classID: VMBusGUID
    public var instanceID: VMBusGUID
    /// Channel flags (0x0001 enumerate interface, 0x0010 named-pipe mode, 0x2000 hv_sock).
    public var flags: UInt16
    /// The 120-byte user-defined area (pipe offers: mode in the first dword).
    public var userDefined: [UInt8]
    /// 0 for a primary channel.
    public var subchannelIndex: UInt16
    /// MMIO space in MB; 0 for everything except synthetic video and vPCI.
    public var mmioMegabytes: UInt16

    public init(classID: VMBusGUID, instanceID: VMBusGUID, flags: UInt16 = 0, userDefined: [UInt8] = [],
                subchannelIndex: UInt16 = 0, mmioMegabytes: UInt16 = 0) {
        self.classID = classID
        self.instanceID = instanceID
        self.flags = flags
        self.userDefined = userDefined
        self.subchannelIndex = subchannelIndex
        self.mmioMegabytes = mmioMegabytes
    }

    /// An integration-component offer the way Hyper-V makes it: enumerate-interface and
    /// named-pipe flags, pipe mode 4 (message) in the first user-defined dword.
    public static func integrationComponent(classID: VMBusGUID, instanceID: VMBusGUID) -> VMBusChannelOffer {
        VMBusChannelOffer(classID: classID, instanceID: instanceID, flags: 0x0011, userDefined: [4, 0, 0, 0])
    }
}

/// An opened channel: everything the VM needs to run the device's rings and signal the guest.
public struct VMBusChannelOpen: Sendable, Equatable {
    public let relid: UInt32
    public let openID: UInt32
    public let classID: VMBusGUID
    public let instanceID: VMBusGUID
    /// The connection id the guest passes to HvSignalEvent for this channel.
    public let signalConnectionID: UInt32
    /// VP whose SIEFP gets the relid bit and which receives the SINT interrupt.
    public var targetVP: UInt32
    public let ringGPADL: UInt32
    /// Page addresses of the guest→host ring (control page first), the host's incoming ring.
    public let guestToHostRing: [UInt64]
    /// Page addresses of the host→guest ring (control page first), the host's outgoing ring.
    public let hostToGuestRing: [UInt64]
    /// OPENCHANNEL's 120 bytes of device-specific data.
    public let userData: [UInt8]

    public init(relid: UInt32, openID: UInt32, classID: VMBusGUID, instanceID: VMBusGUID, signalConnectionID: UInt32,
                targetVP: UInt32, ringGPADL: UInt32, guestToHostRing: [UInt64], hostToGuestRing: [UInt64], userData: [UInt8]) {
        self.relid = relid
        self.openID = openID
        self.classID = classID
        self.instanceID = instanceID
        self.signalConnectionID = signalConnectionID
        self.targetVP = targetVP
        self.ringGPADL = ringGPADL
        self.guestToHostRing = guestToHostRing
        self.hostToGuestRing = hostToGuestRing
        self.userData = userData
    }
}
