"""Operations: sd_notify, health/metrics endpoint, notifications."""
