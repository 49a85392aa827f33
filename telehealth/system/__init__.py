"""Operations endpoints: liveness, readiness, the development mailbox."""
