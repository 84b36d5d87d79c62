-- One database per service: services never read each other's tables.
CREATE DATABASE triage;
CREATE DATABASE coordination;
CREATE DATABASE billing_shadow;
