enum ControllerClientPlaceholder {}
